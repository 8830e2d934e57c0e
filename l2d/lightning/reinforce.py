"""RL with verifiable rewards in Lightning: prompts in, rollouts, the task's verifier, a GRPO update out.

`PromptDataModule` hands out rollout numbers (the prompts and random streams of a rollout are a function
of the seed and that number alone, so a resumed run draws exactly what the uninterrupted one did) and the
validation problems. `ReinforceModule` rolls out `group_size` completions of each of `prompts_per_step`
prompts at a level count drawn from `levels`, scores them with the task's verifier, and takes `updates`
optimizer steps on the clipped surrogate (l2d.rl.objective) with the chosen actions' log-probabilities
recomputed with gradient (l2d.rl.policy). Validation decodes the validation problems greedily at each of
`validation_levels`, exactly as `python -m l2d.evaluate protocol=greedy` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, IterableDataset

from l2d.export import is_l2d
from l2d.lightning.trainable import TrainableCheckpoints
from l2d.model.generate import DecodeOptions
from l2d.model.groups import checked_multipliers
from l2d.rl.objective import choose_actions, clipped_surrogate, group_advantages, kl_k3
from l2d.rl.policy import Scored, chain_log_probs, swapped, token_log_probs
from l2d.rl.rollout import Rollout, rollout
from l2d.rl.settings import Reinforce, Rollouts
from l2d.tasks.base import Task
from l2d.tasks.harness import Decoding, complete, encode_prompts, left_pad, pad_token_id, stop_ids

log = logging.getLogger(__name__)


def rewards_of(result: dict[str, Any], partial_credit: bool = False) -> list[float]:
    """One reward per completion: the verdict, 1 right or 0 wrong; with `partial_credit`, the verifier's score where
    it gives one (reasoning-gym's score_answer: '7979' for 79 scores 0.5, a credit a policy can learn to farm)."""
    return [float(r) for r in (partial_credit and result.get("rewards")) or result["passed"]]


def seeded(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


class RolloutNumbers(IterableDataset):
    """Rollout numbers `skip`..`count` - 1; len() stays `count` because Lightning counts a resumed run's
    restored batches as already read."""

    def __init__(self, count: int, skip: int = 0):
        self.count, self.skip = count, skip

    def __iter__(self):
        return iter(range(self.skip, self.count))

    def __len__(self) -> int:
        return self.count


class PromptDataModule(LightningDataModule):
    """Rollout numbers `skip`..`rollouts` - 1 for training (a resumed run sets `skip`), and the
    validation problems' indices in batches."""

    def __init__(self, rollouts: int, validation_problems: int, validation_batch_size: int = 100,
                 description: list[str] | None = None):
        super().__init__()
        self.description = description  # what the export's model card names as the data
        if rollouts < 1:
            raise ValueError(f"the RL stage needs at least one rollout (method.reinforce.steps), got {rollouts}")
        self.rollouts, self.validation_problems = rollouts, validation_problems
        self.validation_batch_size = validation_batch_size
        self.skip = 0
        self.class_names: list[str] = []
        self.stats = None

    def train_dataloader(self) -> DataLoader:
        return DataLoader(RolloutNumbers(self.rollouts, self.skip), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(range(self.validation_problems), batch_size=self.validation_batch_size, collate_fn=list)


class ReinforceModule(TrainableCheckpoints):
    """GRPO on `network` (an L2DModel, whose diffusion path trains, or an l2d.rl.policy.TokenPolicy).

    task / validation: the prompts (with their verifier) and the problems validated on. rollouts: how many rollout
    batches the stage trains on (method.reinforce.steps). settings: the fields of l2d.rl.settings.Rollouts, which
    holds what each means, its default and its checks (levels, group_size, x1_temperature, updates, kl, ...).
    lr_multipliers: {part of the L2D path: m}, as in supervised training (e.g. w_d held at 0 as its start was).
    """

    shardable = False  # rollouts decode through the network's parts, outside its forward

    def __init__(self, network, tokenizer, task: Task, validation: Task, optimizer: Callable,
                 scheduler: Callable | None = None, rollouts: int = Reinforce.steps, gradient_clip: float | None = 1.0,
                 seed: int = 0, lr_multipliers: dict[str, float] | None = None, **settings):
        super().__init__()
        self.automatic_optimization = False  # several updates per rollout batch, gradient passes in chunks
        self.network, self.tokenizer, self.task, self.validation = network, tokenizer, task, validation
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.is_l2d = is_l2d(network)
        self.lr_multipliers = checked_multipliers(lr_multipliers, None if self.is_l2d else type(network).__name__)
        s = Rollouts(**settings)
        self.levels = s.levels if self.is_l2d else [1]
        self.validation_levels = s.validation_levels if self.is_l2d else [1]
        if self.is_l2d and any(n < 2 for n in self.levels):
            raise ValueError(f"method.reinforce.levels must be >= 2 (levels 1 is the frozen LM), got {s.levels}")
        self.rollouts, self.prompts_per_step, self.group_size = rollouts, s.prompts_per_step, s.group_size
        self.solver, self.t_final = s.solver, s.t_final
        self.x1_temperature, self.anneal_x1_temperature = s.x1_temperature, s.anneal_x1_temperature
        self.temperature, self.actions_per_token, self.clip = s.temperature, s.actions_per_token, s.clip
        self.updates, self.kl, self.kl_every = s.updates, s.kl, s.kl_every
        self.max_new_tokens, self.rows_per_pass = s.max_new_tokens, s.rows_per_pass
        self.validation_batch_size, self.gradient_clip, self.seed = s.validation_batch_size, gradient_clip, seed
        self.partial_credit = s.partial_credit
        self.problems = task.problems()
        self.validation_problems = validation.problems()
        self.prompts = encode_prompts(tokenizer, self.problems, task.messages)
        self.stops = stop_ids(network, tokenizer)
        self.pad_id = pad_token_id(tokenizer, self.stops)
        trainable = [p for _, p in network.trainable_named_parameters()]
        self.start = [p.detach().clone() for p in trainable]  # the starting policy, for the KL to it
        self.val_correct: dict[int, list[float]] = {}

    # ---- what a rollout batch is ---------------------------------------------------------------------
    def batch_plan(self, number: int) -> tuple[list[int], int]:
        """(problem indices, levels) of rollout batch `number`: prompts without replacement through a seeded
        permutation per pass over the prompts, the level count drawn from `levels`."""
        per_pass = max(1, len(self.problems) // self.prompts_per_step)
        order = np.random.default_rng(seeded(self.seed, number // per_pass)).permutation(len(self.problems))
        first = (number % per_pass) * self.prompts_per_step
        levels = self.levels[np.random.default_rng(seeded(self.seed, number, 1)).integers(len(self.levels))]
        return order[first:first + self.prompts_per_step].tolist(), levels

    def decode_options(self, levels: int, x1_temperature: float) -> DecodeOptions:
        return DecodeOptions(solver=self.solver, levels=levels, t_final=self.t_final, x1_temperature=x1_temperature,
                             anneal_x1_temperature=self.anneal_x1_temperature)

    def roll_out(self, number: int) -> tuple[Rollout, torch.Tensor, list[int]]:
        """(rollout, rewards (P, G), problems) of rollout batch `number`: each prompt repeated G times."""
        problems, levels = self.batch_plan(number)
        prompts = [self.prompts[i] for i in problems for _ in range(self.group_size)]
        ids, mask = left_pad(prompts, self.pad_id, self.device)
        generator = torch.Generator(self.device).manual_seed(seeded(self.seed, number, 2))
        was_training = self.network.training
        self.network.eval()
        done = rollout(self.network, ids, mask, self.decode_options(levels, self.x1_temperature), self.temperature,
                       self.max_new_tokens, self.stops, self.pad_id, generator)
        self.network.train(was_training)
        texts = [self.tokenizer.decode(done.tokens[row, :length].tolist(), skip_special_tokens=True)
                 for row, length in enumerate(done.lengths.tolist())]
        groups = [texts[i * self.group_size:(i + 1) * self.group_size] for i in range(len(problems))]
        results = self.task.score_all([self.problems[i] for i in problems], groups)
        rewards = torch.tensor([rewards_of(result, self.partial_credit) for result in results], device=self.device)
        return done, rewards, problems

    # ---- the update ----------------------------------------------------------------------------------
    def scored(self, done: Rollout, rows: torch.Tensor, chosen: torch.Tensor) -> Scored:
        if self.is_l2d:
            return chain_log_probs(self.network, done, rows, chosen)
        return token_log_probs(self.network, done, rows)

    def start_log_probs(self, done: Rollout, rows: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """The starting policy's log-probabilities of the chosen actions (no gradient), for the KL to it. Score
        it before the gradient pass of `losses`: swapping the weights afterwards would invalidate that graph."""
        with torch.no_grad(), swapped([p for _, p in self.network.trainable_named_parameters()], self.start):
            return self.scored(done, rows, chosen).log_probs

    def losses(self, done: Rollout, rows: torch.Tensor, chosen: torch.Tensor, advantages: torch.Tensor,
               reference: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per completion of `rows`: the surrogate and, given the start's log-probabilities (`reference`), the
        KL to the start, each the mean over its chosen stochastic actions (the unbiased estimate of its chain's
        mean), and the entropies and ratios."""
        now = self.scored(done, rows, chosen)
        length = now.log_probs.shape[1]
        old = done.log_probs[rows, :length].gather(2, chosen)
        temperatures = torch.tensor(done.temperatures, device=self.device)[chosen]
        counted = done.valid[rows, :length].unsqueeze(-1) & (temperatures > 0)  # (R, S, K)
        per_completion = counted.sum((1, 2)).clamp_min(1)

        def mean(values: torch.Tensor) -> torch.Tensor:
            return torch.where(counted, values, 0.0).sum((1, 2)) / per_completion

        surrogate, ratio = clipped_surrogate(now.log_probs, old, advantages[rows].view(-1, 1, 1), self.clip)
        out = {"surrogate": mean(surrogate), "ratio": mean(ratio), "entropy_x1": mean(now.entropies)}
        if reference is not None:
            out["kl"] = mean(kl_k3(now.log_probs, reference))
        return out

    def training_step(self, batch, batch_idx: int) -> None:
        number = int(batch)
        done, rewards, problems = self.roll_out(number)
        advantages = group_advantages(rewards).flatten()  # row p * G + g
        informative = advantages.nonzero().squeeze(1)  # the rest add nothing to the policy gradient
        total = advantages.numel()
        generator = torch.Generator(self.device).manual_seed(seeded(self.seed, number, 3))
        chosen_all = choose_actions(done.lengths, done.actions.shape[-1], self.actions_per_token, generator)
        measure_kl = self.kl > 0 or number % self.kl_every == 0
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        logged: dict[str, list[torch.Tensor]] = {}
        references: dict[int, torch.Tensor] = {}  # chunk -> the start's log-probs: fixed through the updates
        for update in range(self.updates):
            optimizer.zero_grad(set_to_none=True)
            for start in range(0, len(informative), self.rows_per_pass):
                rows = informative[start:start + self.rows_per_pass]
                length = int(done.lengths[rows].max())
                chosen = chosen_all[rows, :length]
                if update == 0 and measure_kl:
                    references[start] = self.start_log_probs(done, rows, chosen)
                # A KL penalty is part of every update's loss; a KL only measured is measured once a batch.
                reference = references.get(start) if update == 0 or self.kl else None
                parts = self.losses(done, rows, chosen, advantages, reference)
                loss = parts["surrogate"].sum() / total + (self.kl * parts["kl"].sum() / total if self.kl else 0.0)
                self.manual_backward(loss)
                if update == 0:
                    for name, values in parts.items():
                        logged.setdefault(name, []).append(values.detach())
            if len(informative) and self.gradient_clip:
                self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip, gradient_clip_algorithm="norm")
            optimizer.step()  # without gradients a no-op, but it counts: one global step per update, resumable
            if scheduler is not None:
                scheduler.step()
        self.log_rollout(done, rewards, len(informative) / total, logged)

    def log_rollout(self, done: Rollout, rewards: torch.Tensor, informative: float,
                    logged: dict[str, list[torch.Tensor]]) -> None:
        levels = done.levels
        metrics = {"rl/reward": rewards.mean(), "rl/reward_std": rewards.std(dim=1, unbiased=False).mean(),
                   "rl/accuracy": (rewards >= 1).float().mean(), f"rl/reward_levels{levels}": rewards.mean(),
                   f"rl/reward_std_levels{levels}": rewards.std(dim=1, unbiased=False).mean(),
                   "rl/levels": float(levels), "rl/nfe": float(done.nfe), "rl/informative": informative,
                   "rl/tokens_per_s": done.lengths.sum() / done.seconds, "rl/rollout_seconds": done.seconds}
        metrics.update({f"rl/{name}": torch.cat(values).mean() for name, values in logged.items()})
        self.log_dict({key: torch.as_tensor(value, dtype=torch.float32) for key, value in metrics.items()},
                      batch_size=rewards.numel())

    # ---- validation: greedy, as python -m l2d.evaluate protocol=greedy -------------------------------
    def validation_step(self, batch: list[int], batch_idx: int) -> None:
        problems = [self.validation_problems[i] for i in batch]
        prompts = encode_prompts(self.tokenizer, problems, self.validation.messages)
        for levels in self.validation_levels:
            decode = {"solver": self.solver, "levels": levels, "t_final": self.t_final} if self.is_l2d else {}
            decoding = Decoding(decode=decode, temperature=0.0)
            texts = complete(self.network, self.tokenizer, prompts, decoding, self.max_new_tokens,
                             batch_size=self.validation_batch_size, seed=batch_idx, progress=False)
            results = self.validation.score_all(problems, [[c.text] for c in texts])
            self.val_correct.setdefault(levels, []).extend(float(r["correct"]) for r in results)

    def on_validation_epoch_end(self) -> None:
        for levels, correct in self.val_correct.items():
            self.log(f"val/accuracy_levels{levels}", sum(correct) / len(correct))
        if self.val_correct:
            self.log("val/accuracy", sum(sum(c) / len(c) for c in self.val_correct.values()) / len(self.val_correct))
        self.val_correct = {}

    # ---- optimisation and checkpoints ----------------------------------------------------------------
    def total_steps(self) -> int:
        return self.rollouts * self.updates  # manual optimization: Lightning's count knows no updates per batch

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.check_trainable(checkpoint)
        if self.trainer.datamodule is not None:  # the rollout batches already trained on are not drawn again
            self.trainer.datamodule.skip = checkpoint["global_step"] // self.updates
