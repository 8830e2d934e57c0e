"""RL through the denoising chain on tiny models: the policy gradient's direction, t = 0 exactness after RL,
reproducible rollouts, resuming mid-run, and bad input."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.lightning.callbacks import AtomicCheckpointIO
from l2d.lightning.reinforce import PromptDataModule, ReinforceModule, rewards_of
from l2d.model.finetune import Finetune
from l2d.model.generate import DecodeOptions
from l2d.model.tiny import tiny_model
from l2d.rl.objective import choose_actions, group_advantages
from l2d.rl.policy import TokenPolicy, chain_log_probs
from l2d.rl.rollout import rollout
from l2d.tasks import get_task
from l2d.tasks.harness import encode_prompts, left_pad, stop_ids
from l2d.validation import InputError, check_train
from tests.entry_points.test_bad_input import config
from tests.training.conftest import TINY_RUN


class ParityTask:
    """Prompts q0, q1, ...; a completion earns 1 when its first character's code point is even: a reward a tiny
    random model earns about half the time, so groups differ."""

    name = "parity"

    def __init__(self, count: int):
        self._problems = [{"id": str(i), "question": f"q{i}", "target": None} for i in range(count)]

    def problems(self, limit=None):
        return self._problems

    def messages(self, problem):
        return [{"role": "user", "content": problem["question"]}]

    def score_all(self, problems, generations):
        passed = [[bool(text) and ord(text[0]) % 2 == 0 for text in texts] for texts in generations]
        return [{"passed": p, "correct": p[0], "extracted": True} for p in passed]


def l2d_policy(seed: int = 0) -> tuple[L2DModel, object]:
    """A tiny L2D model whose path matters (moved off its start), in train mode as an RL stage holds it."""
    base, tokenizer = tiny_model()
    torch.manual_seed(seed)
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4))
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.train(), tokenizer


class HalfCreditTask(ParityTask):
    """ParityTask whose verifier gives a completion it judges wrong half the credit (as reasoning-gym's gives
    '7979' for 79)."""

    def score_all(self, problems, generations):
        return [{**result, "rewards": [1.0 if right else 0.5 for right in result["passed"]]}
                for result in super().score_all(problems, generations)]


def module_for(network, tokenizer, task=None, **settings) -> ReinforceModule:
    options = dict(rollouts=4, prompts_per_step=2, group_size=4, levels=(2, 3), max_new_tokens=3,
                   validation_levels=(2,), validation_batch_size=4, actions_per_token=3)
    options.update(settings)
    return ReinforceModule(network, tokenizer, task or ParityTask(6), ParityTask(2),
                           optimizer=partial(torch.optim.AdamW, lr=1e-2), **options)


def prompts(tokenizer, count: int = 2):
    ids = encode_prompts(tokenizer, ParityTask(count).problems(), ParityTask(count).messages)
    return left_pad(ids, tokenizer.pad_token_id, "cpu")


def roll(model, tokenizer, seed: int, levels: int = 2, temperature: float = 1.0):
    ids, mask = prompts(tokenizer)
    options = DecodeOptions(levels=levels, x1_temperature=1.0, anneal_x1_temperature=False)
    return rollout(model, ids, mask, options, temperature, 4, stop_ids(model, tokenizer), tokenizer.pad_token_id,
                   torch.Generator().manual_seed(seed))


def test_rollouts_are_reproducible_for_a_seed_and_record_every_evaluation():
    model, tokenizer = l2d_policy()
    model.eval()
    first, again, other = roll(model, tokenizer, 0), roll(model, tokenizer, 0), roll(model, tokenizer, 1)
    for name in ("tokens", "lengths", "actions", "log_probs", "states"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.actions, other.actions)
    # midpoint at levels 2: 2 evaluations of the grid and the final one; the last action is the emitted token
    assert first.nfe == 3 and first.times == [0.0, 0.5, 1.0] and first.temperatures == [1.0, 1.0, 1.0]
    assert torch.equal(first.actions[..., -1][first.valid], first.tokens[first.valid])
    # the same decoder as generate: the same tokens for the same seed and settings
    ids, mask = prompts(tokenizer)
    generated = model.generate(ids, mask, max_new_tokens=4, levels=2, x1_temperature=1.0, anneal_x1_temperature=False,
                               temperature=1.0, eos_token_id=stop_ids(model, tokenizer),
                               pad_token_id=tokenizer.pad_token_id, generator=torch.Generator().manual_seed(0))
    assert torch.equal(generated[:, ids.shape[1]:][first.valid], first.tokens[first.valid])


def test_recomputed_log_probs_are_the_rollouts():
    model, tokenizer = l2d_policy()
    done = roll(model, tokenizer, 0, levels=3)
    rows = torch.arange(done.tokens.shape[0])
    chosen = choose_actions(done.lengths, done.nfe, done.nfe)  # every action
    length = int(done.lengths.max())
    scored = chain_log_probs(model, done, rows, chosen)
    valid = done.valid[:, :length].unsqueeze(-1).expand_as(scored.log_probs)
    torch.testing.assert_close(scored.log_probs[valid], done.log_probs[:, :length][valid], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_one_policy_gradient_step_moves_an_actions_log_prob_with_its_advantage(sign):
    model, tokenizer = l2d_policy()
    module = module_for(model, tokenizer, actions_per_token=10)
    done = roll(model, tokenizer, 0)
    rows = torch.tensor([0])
    chosen = choose_actions(done.lengths[rows], done.nfe, done.nfe)
    advantages = torch.tensor([sign, 0.0])
    before = chain_log_probs(model, done, rows, chosen).log_probs.sum().item()
    loss = module.losses(done, rows, chosen, advantages)["surrogate"].sum()
    loss.backward()
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            if p.grad is not None:  # the vocabulary V shapes the states, which are recorded: no gradient
                p -= 1e-3 * p.grad
    after = chain_log_probs(model, done, rows, chosen).log_probs.sum().item()
    assert (after - before) * sign > 0  # rewarded: more likely; punished: less


def test_group_advantages_compare_completions_of_one_prompt():
    advantages = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))
    assert torch.allclose(advantages[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-5)
    assert torch.equal(advantages[1], torch.zeros(4))  # a group that scored alike teaches nothing


def fit(module, tmp_path, steps: int, ckpt_path=None, every: int = 2, stop_after: int = -1):
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "checkpoints", every_n_train_steps=every,
                                                      save_top_k=-1, filename="step{step}",
                                                      auto_insert_metric_name=False)
    trainer = L.Trainer(max_epochs=1, max_steps=stop_after, logger=False, callbacks=[checkpoints],
                        plugins=[AtomicCheckpointIO()], enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu")
    trainer.fit(module, datamodule=PromptDataModule(steps, 2, 4), ckpt_path=ckpt_path)
    return trainer


def test_rl_changes_the_path_yet_at_t0_the_model_is_still_exactly_the_base(tmp_path):
    model, tokenizer = l2d_policy()
    start = [p.detach().clone() for _, p in model.trainable_named_parameters()]
    fit(module_for(model, tokenizer), tmp_path, steps=3)
    assert any(not torch.equal(a, p) for a, (_, p) in zip(start, model.trainable_named_parameters(), strict=True))
    ids, mask = prompts(tokenizer)
    with torch.no_grad():
        out = model(ids, mask, timesteps=0.0)
        reference = model.base(ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)).logits
    for row in range(ids.shape[0]):
        assert torch.equal(out.logits[row][out.valid[row]], reference[row][mask[row].bool()])


def test_a_run_resumed_mid_way_continues_as_the_uninterrupted_one(tmp_path):
    model, tokenizer = l2d_policy()
    fit(module_for(model, tokenizer), tmp_path / "whole", steps=4)
    whole = [p.detach().clone() for _, p in model.trainable_named_parameters()]

    model, tokenizer = l2d_policy()
    fit(module_for(model, tokenizer), tmp_path / "cut", steps=4, stop_after=2)  # as if killed after step 2
    model, tokenizer = l2d_policy()  # a fresh process: the start again, then the checkpoint of step 2
    fit(module_for(model, tokenizer), tmp_path / "resumed", steps=4,
        ckpt_path=tmp_path / "cut" / "checkpoints" / "step2.ckpt")
    for a, (_, b) in zip(whole, model.trainable_named_parameters(), strict=True):
        assert torch.equal(a, b)


def test_lr_multipliers_hold_a_part_of_the_path_through_rl(tmp_path):
    """module.lr_multipliers={w_d: 0, conditioning: 0} keeps w_d(t) where the start left it (as the supervised
    run that held it open), while the rest of the path trains."""
    model, tokenizer = l2d_policy()
    groups = model.trainable_groups()
    start = {name: [p.detach().clone() for p in parameters] for name, parameters in groups.items()}
    fit(module_for(model, tokenizer, lr_multipliers={"w_d": 0, "conditioning": 0}), tmp_path, steps=3)
    moved = {name: any(not torch.equal(a, p) for a, p in zip(start[name], parameters, strict=True))
             for name, parameters in groups.items()}
    assert not moved["w_d"] and not moved["conditioning"]
    assert moved["lora_B"] and moved["translation"]


def test_a_kl_penalty_is_in_every_updates_loss(tmp_path):
    """method.reinforce.kl > 0 with several updates per rollout batch: each update's loss carries the KL to the
    start (it used to be computed for the first update only, so the second found no KL term and failed);
    at kl = 0 the KL is only measured, once a batch, every kl_every batches. The start's log-probabilities
    of a batch's actions are scored once, not once per update."""
    def fitted_with(kl: float) -> tuple[list[bool], int]:
        model, tokenizer = l2d_policy()
        module = module_for(model, tokenizer, kl=kl, updates=3, kl_every=2)
        calls, starts, losses, start_log_probs = [], [], module.losses, module.start_log_probs
        module.losses = lambda *args: calls.append(args[-1] is not None) or losses(*args)
        module.start_log_probs = lambda *args: starts.append(1) or start_log_probs(*args)
        fit(module, tmp_path / f"kl{kl}", steps=2)
        return calls, len(starts)

    penalised, scored = fitted_with(0.5)
    assert penalised and all(penalised)
    assert 3 * scored == len(penalised)  # three updates of each chunk, one scoring of its start
    measured, _ = fitted_with(0.0)
    assert 0 < sum(measured) < len(measured)  # batch 0's first update only


def test_the_rl_stage_takes_lr_multipliers_from_the_command_line(tmp_path):
    from l2d.train import reinforcement
    from tests.compose import compose_config

    L2DModel(tiny_model()[0], L2DConfig(dim=16, lora_rank=4)).save_pretrained(tmp_path / "l2d")
    cfg = compose_config("train", [*TINY_RUN, "data=arithmetic", "method=l2d_rl", f"init={tmp_path / 'l2d'}",
                                   "module.lr_multipliers={w_d:0,translation:0.5}", "lr=1e-3"], tmp_path / "rl")
    _, _, module, _ = reinforcement(cfg)
    rates = {group["name"]: group["initial_lr"]  # the peak, before the warm-up
             for group in module.configure_optimizers()["optimizer"].param_groups}
    assert rates["w_d"] == 0 and rates["translation"] == pytest.approx(5e-4) and rates["lora_B"] == 1e-3


def test_the_reward_is_the_verdict_unless_partial_credit_is_asked_for():
    task = get_task("reasoning_gym/basic_arithmetic", size=1, num_shots=0)
    problem = task.to_problem({"question": "What is 40 + 39?", "answer": "79", "metadata": {}}, 0)
    result = task.score(problem, ["7979", "79", "80"])
    assert rewards_of(result) == [0.0, 1.0, 0.0]
    assert rewards_of(result, partial_credit=True) == [0.5, 1.0, 0.0]  # reasoning-gym's own score_answer


def test_an_rl_stage_rewards_partial_credit_only_when_asked():
    model, tokenizer = l2d_policy()
    verdicts = module_for(model, tokenizer, HalfCreditTask(6)).roll_out(0)[1]
    credits = module_for(model, tokenizer, HalfCreditTask(6), partial_credit=True).roll_out(0)[1]  # same rollouts
    assert (verdicts == 0).any() and (verdicts == 1).any()
    assert torch.equal(credits, torch.where(verdicts == 1, 1.0, 0.5))


@pytest.mark.parametrize("partial_credit", [None, True])
def test_the_rl_stage_records_its_reward_in_the_export(tmp_path, partial_credit):
    from l2d.model.card import reinforcement_rows
    from l2d.train import reinforcement
    from tests.compose import compose_config

    L2DModel(tiny_model()[0], L2DConfig(dim=16, lora_rank=4)).save_pretrained(tmp_path / "l2d")
    option = [] if partial_credit is None else [f"method.reinforce.partial_credit={str(partial_credit).lower()}"]
    cfg = compose_config("train", [*TINY_RUN, "data=arithmetic", "method=l2d_rl", f"init={tmp_path / 'l2d'}", *option],
                         tmp_path / "rl")
    network, _, module, _ = reinforcement(cfg)
    chosen = bool(partial_credit)  # the default is the verdict
    assert module.partial_credit is chosen and network.config.reinforced["partial_credit"] is chosen
    network.save_pretrained(tmp_path / "export")
    recorded = L2DModel.from_pretrained(tmp_path / "export", base=tiny_model()[0]).config.reinforced
    assert recorded["partial_credit"] is chosen
    (row,) = reinforcement_rows(recorded)
    assert ("partial credit as reward" if chosen else "verdict (1 or 0) as reward") in row[1]


def test_lora_in_token_space_one_action_per_token(tmp_path):
    base, tokenizer = tiny_model()
    lora = Finetune(base, lora_rank=4)
    with torch.no_grad():
        for _, p in lora.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    lora.save_pretrained(tmp_path / "lora")
    policy = TokenPolicy(Finetune(tiny_model()[0], init=tmp_path / "lora"))
    assert policy.num_trainable_parameters() == lora.num_trainable_parameters()
    start = [p.detach().clone() for _, p in policy.trainable_named_parameters()]
    module = module_for(policy, tokenizer)
    assert module.levels == [1]
    done = module.roll_out(0)[0]
    assert done.nfe == 1 and done.states is None
    done.lengths[:] = done.lengths.clamp_max(2)  # rows that stopped early: the slots end at the longest row
    rows = torch.arange(done.tokens.shape[0])
    scored = module.scored(done, rows, choose_actions(done.lengths, 1, 1))
    assert scored.log_probs.shape == (len(rows), int(done.lengths.max()), 1)
    valid = done.valid[:, :scored.log_probs.shape[1]]
    torch.testing.assert_close(scored.log_probs[..., 0][valid], done.log_probs[:, :valid.shape[1], 0][valid],
                               atol=1e-4, rtol=1e-4)
    chosen = choose_actions(done.lengths, 1, 1)
    losses = module.losses(done, rows, chosen, torch.ones(len(rows)), module.start_log_probs(done, rows, chosen))
    assert losses["kl"].abs().max() < 1e-5  # the start itself
    fit(module, tmp_path / "run", steps=2)
    assert any(not torch.equal(a, p) for a, (_, p) in zip(start, policy.trainable_named_parameters(), strict=True))


@pytest.mark.parametrize(("overrides", "message"), [
    (["init=null"], r"method=l2d_rl trains on from an export: give init=<an L2D run's export/ directory>"),
    (["init={lora}"], r"no l2d_config.json in it \(give an L2D run's export/ directory\)"),
    (["method.reinforce.task.name=poetry"],
     r"method.reinforce.task: unknown task 'poetry'.*the reward is a task's verifier"),
    (["method.reinforce.group_size=1"], r"method.reinforce.group_size must be an integer >= 2"),
    (["method.reinforce.steps=abc"], r"method.reinforce.steps must be an integer >= 1, got 'abc'"),
    (["method.reinforce.levels=[2,0]"], r"method.reinforce.levels must be a list of integers >= 1, got \[2, 0\]"),
    (["method.reinforce.solver=dopri5"], r"method.reinforce.solver must be one of \['euler', 'midpoint', 'rk4'\]"),
    (["method=lora_rl", "init={lora}", "module.lr_multipliers={{w_d:0}}"],
     r"module.lr_multipliers scales the diffusion path's parameter groups; method=lora_rl has none"),
    (["module.lr_multipliers={{w_head:0}}"], r"module.lr_multipliers.w_head: not a parameter group; allowed: w_d"),
    (["method.reinforce.partial_credit=maybe"],
     r"method.reinforce.partial_credit must be true \(the verifier's partial credit as reward\) or false .*'maybe'"),
])
def test_bad_rl_input_gets_one_clear_line(tmp_path, overrides, message):
    base, _ = tiny_model()
    Finetune(base, lora_rank=4).save_pretrained(tmp_path / "lora")
    l2d = tmp_path / "l2d"
    L2DModel(tiny_model()[0], L2DConfig(dim=16, lora_rank=4)).save_pretrained(l2d)
    given = [o.format(lora=tmp_path / "lora") for o in overrides]
    run = [*TINY_RUN, "data=arithmetic", "method=l2d_rl", f"init={l2d}"]
    with pytest.raises(InputError, match=message):
        check_train(config("train", *(o for o in run if o.split("=")[0] not in {g.split("=")[0] for g in given}),
                           *given))


@pytest.mark.slow
def test_the_rl_stage_from_the_command_line_exports_its_chain(tmp_path):
    """python -m l2d.train method=l2d_rl init=<export>, in-process on the tiny model: the export records what it
    started from, the evaluation names it, and its card says what the stage did."""
    from l2d.evaluate import evaluate
    from l2d.model.checkpoint import read_meta
    from l2d.train import train
    from tests.compose import compose_config

    run = [*TINY_RUN, "data=arithmetic", "data.sources.0.size=40"]
    train(compose_config("train", [*run, "trainer.max_steps=2"], tmp_path / "l2d"))
    init = tmp_path / "l2d" / "export"
    metrics = train(compose_config("train", [*run, "method=l2d_rl", f"init={init}", "method.reinforce.steps=2",
                                             "method.reinforce.prompts_per_step=1", "method.reinforce.group_size=2",
                                             "method.reinforce.max_new_tokens=2", "method.reinforce.levels=[2]",
                                             "method.reinforce.validation.options.size=2",
                                             "method.reinforce.validation_levels=[2]"], tmp_path / "rl"))
    assert metrics["global_step"] == 2 and "val/accuracy_levels2" in metrics and "rl/reward" in metrics
    export = tmp_path / "rl" / "export"
    reinforced = read_meta(export)["config"]["reinforced"]
    assert reinforced["init"]["path"] == str(init.resolve()) and reinforced["task"] == "reasoning_gym/basic_arithmetic"
    assert reinforced["partial_credit"] is False
    card = (export / "README.md").read_text()
    assert "RL stage" in card and "verdict (1 or 0) as reward" in card
    assert "# l2d_lora_rl on " in card  # the card's title names the method as results do
    result = evaluate(compose_config("evaluate", ["model=tiny", f"checkpoint={export}", "task=arithmetic",
                                                  "task.options.size=2", "max_new_tokens=2", "progress=false",
                                                  "protocol=greedy", "solver.levels=2"], tmp_path / "eval"))
    assert result["model"]["method"] == "l2d_lora_rl"
