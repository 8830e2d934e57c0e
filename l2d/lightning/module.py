"""TrainingModule: any network with `forward(**batch).loss` (L2D or a baseline), trained by Lightning.

Checkpoints hold only what trains (plus optimizer and loop state), never the frozen base. A step
whose loss is not finite is skipped on every rank and logged; after `max_nonfinite_steps` in a
row the run stops with its last good weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from l2d.export import is_l2d
from l2d.lightning.strategies import gradient_norm, whole_trainable
from l2d.lightning.trainable import TrainableCheckpoints
from l2d.model.dtypes import store_frozen
from l2d.model.groups import checked_multipliers
from l2d.validation import InputError

log = logging.getLogger(__name__)
# The health signal of a trained path: loss(t = 1) / loss(t = 0.25) over the same positions and noise. At t = 1
# x_t is the answer's own embedding, at 0.25 it is mostly noise (σ 64), so a path that reads x_t drives the ratio
# far below 1; near 1 it predicts from the context alone, and more diffusion steps cannot help it.
HEALTH_TIMES = (0.25, 1.0)
HEALTH_METRIC = "val/health_ratio"


def loss_by_t_bin(token_losses: torch.Tensor, timesteps: torch.Tensor, valid: torch.Tensor,
                  bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of losses, count) per t-bin [i/bins, (i+1)/bins); t = 1 falls in the last bin."""
    index = (timesteps[valid] * bins).long().clamp(0, bins - 1)
    sums = torch.zeros(bins, device=token_losses.device).index_add_(0, index, token_losses[valid].float().detach())
    counts = torch.zeros(bins, device=token_losses.device).index_add_(0, index, torch.ones_like(sums[index]))
    return sums, counts


class TrainingModule(TrainableCheckpoints):
    def __init__(self, network: torch.nn.Module, optimizer: Callable, scheduler: Callable | None = None,
                 t_bins: int = 10, max_nonfinite_steps: int = 3, seed: int = 0,
                 val_timesteps: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0),
                 lr_multipliers: dict[str, float] | None = None):
        super().__init__()
        self.network = network
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.t_bins = t_bins
        self.max_nonfinite_steps = max_nonfinite_steps
        self.val_timesteps = tuple(val_timesteps)
        self.seed = seed
        self.nonfinite_in_window = False
        self.nonfinite_in_a_row = 0
        self.skipped_steps = 0
        self.stopped_nonfinite = False
        self.is_l2d = is_l2d(network)
        self.lr_multipliers = checked_multipliers(lr_multipliers, None if self.is_l2d else type(network).__name__)

    # ---- steps -------------------------------------------------------------------------------------
    def forward(self, batch: dict, **overrides):
        return self.network(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"], class_labels=batch.get("class_labels") if self.is_l2d
                            and self.network.config.num_classes > 0 else None, **overrides)

    def setup(self, stage: str) -> None:
        if self.frozen_in_bf16():
            cast = store_frozen(self.network, torch.bfloat16)
            log.info("bf16-mixed on CPU: the frozen weights (%.1fM parameters) stored in bfloat16, the trainable "
                     "ones float32", cast / 1e6)

    def frozen_in_bf16(self) -> bool:
        """bf16-mixed on a CPU: autocast would cast every frozen weight to bfloat16 again at every forward; stored in
        it, the step is faster (docs/performance.md, CPU) and the main path is exactly the base in bfloat16. Not
        under a sharded strategy (trainer=fsdp keeps float32 weights), nor on GPUs, where it was not measured."""
        trainer = self.trainer
        return (trainer.precision == "bf16-mixed" and trainer.strategy.root_device.type == "cpu"
                and isinstance(trainer.strategy, (SingleDeviceStrategy, DDPStrategy)))

    def on_fit_start(self) -> None:
        # Modes set on purpose, not left to how the parts were loaded: what trains in training mode, the frozen
        # base of L2D in eval mode (CausalLM.train), so that the main path is the base model exactly.
        self.train()

    def on_train_epoch_start(self) -> None:
        if self.trainer.datamodule is not None:
            self.trainer.datamodule.skip_batches = 0  # later epochs start from their first batch

    def noise_generator(self) -> torch.Generator:
        """The stream of t, x0 and class dropout for the current micro-batch, a function of (seed, epoch,
        micro-batch, rank) alone: a resumed run draws exactly the noise the uninterrupted one did, and
        every rank its own."""
        import numpy as np

        micro_batch = self.trainer.fit_loop.epoch_loop.batch_progress.current.ready  # restored on resume
        key = [self.seed, self.current_epoch, micro_batch, self.global_rank]
        return torch.Generator(self.device).manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))

    def training_step(self, batch: dict, batch_idx: int):
        out = self(batch, generator=self.noise_generator()) if self.is_l2d else self(batch)
        if not torch.isfinite(out.loss):
            self.nonfinite_in_window = True
            # A zero loss still reaches every trainable parameter, so DDP's gradient all-reduce stays in step.
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        self.log("train/loss", out.loss, prog_bar=True)
        self.log_t_bins(out)
        return out.loss

    def on_validation_epoch_start(self) -> None:
        self.val_bins = torch.zeros(2, self.t_bins, device=self.device)  # loss sums, counts
        self.val_at_t = torch.zeros(2, len(self.val_timesteps), device=self.device)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if self.is_l2d and self.val_timesteps:
            # The same noise at every validation, so the curves move only because the model does; the loss at
            # sampled t and the losses at fixed t share one main-path pass.
            generator = torch.Generator(self.device).manual_seed(batch_idx * self.trainer.world_size
                                                                 + self.trainer.global_rank)
            out, *outs = self.network.losses_at(batch["input_ids"], batch["attention_mask"], batch["labels"],
                                                self.val_timesteps, batch.get("class_labels")
                                                if self.network.num_classes else None, generator=generator,
                                                sampled=True)
            self.val_at_t += torch.stack([torch.stack([o.token_losses.sum(), o.valid.sum().float()]) for o in outs], 1)
        else:
            out = self(batch)
        self.log("val/loss", out.loss, prog_bar=True, sync_dist=True)
        if getattr(out, "token_losses", None) is not None:
            self.val_bins += torch.stack(loss_by_t_bin(out.token_losses, out.timesteps, out.valid, self.t_bins))

    def on_validation_epoch_end(self) -> None:
        # One all-reduce of every bin: ranks see different t-bins, so per-bin syncs would not line up.
        sums, counts = self.trainer.strategy.reduce(self.val_bins, reduce_op="sum")
        for i in torch.nonzero(counts).flatten().tolist():
            self.log(f"val/loss_t_bin{i}", sums[i] / counts[i])
        if not self.is_l2d:
            return
        # The loss at fixed t over every validation position: the curve that shows the path reading x_t.
        sums, counts = self.trainer.strategy.reduce(self.val_at_t, reduce_op="sum")
        at_t = {t: total / count
                for t, total, count in zip(self.val_timesteps, sums.tolist(), counts.tolist(), strict=True) if count}
        for t, loss in at_t.items():
            self.log(f"val/loss_at_t{t:g}", loss)
        if HEALTH_TIMES[0] in at_t and HEALTH_TIMES[1] in at_t:
            self.log(HEALTH_METRIC, at_t[HEALTH_TIMES[1]] / at_t[HEALTH_TIMES[0]], prog_bar=True)
        # How far the path is opened at each t (w_d(0) = 0 always): the health signal next to loss by t.
        t = torch.tensor([self.val_timesteps], device=self.device)
        classes = torch.zeros_like(t).long() if self.network.num_classes else None
        with whole_trainable(self.network):  # sharded (trainer=fsdp): gathered outside a forward
            w_d = self.network.diffusion.condition(t, classes).fusion().abs().mean(-1)[0]
        for time_, size in zip(self.val_timesteps, w_d.tolist(), strict=True):
            self.log(f"val/w_d_at_t{time_:g}", size)

    def log_t_bins(self, out) -> None:
        """Training loss per t-bin, this rank's batch (the paper's Figure 3, in training form)."""
        if getattr(out, "token_losses", None) is None:
            return
        sums, counts = loss_by_t_bin(out.token_losses, out.timesteps, out.valid, self.t_bins)
        for i in torch.nonzero(counts).flatten().tolist():
            self.log(f"train/loss_t_bin{i}", sums[i] / counts[i], batch_size=int(counts[i]))

    # ---- optimisation (configure_optimizers: TrainableCheckpoints) ------------------------------
    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        plugin = self.trainer.precision_plugin
        if gradient_clip_val and isinstance(plugin, MixedPrecision) and plugin.scaler is None:
            # bf16-mixed scales no loss, so a fused AdamW (conf/train.yaml) has nothing to unscale, but Lightning's
            # mixed-precision plugin refuses to clip for any fused optimizer: clip as its plain-precision base does.
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_before_optimizer_step(self, optimizer) -> None:
        # Norms over every process's shard of the gradients under trainer=fsdp (gradient_norm).
        grads = [p.grad for p in self.network.parameters() if p.grad is not None]
        if grads:
            self.log("train/grad_norm", gradient_norm(grads))
        if self.is_l2d:  # which parts of the path the loss reaches (a closed path starves some)
            for group, parameters in self.network.trainable_groups().items():
                grads = [p.grad for p in parameters if p.grad is not None]
                if grads:
                    self.log(f"train/grad_norm_{group}", gradient_norm(grads))

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        optimizer_closure()  # forward and backward of the window's last micro-batch
        skip = self.trainer.strategy.reduce_boolean_decision(self.nonfinite_in_window, all=False)
        self.nonfinite_in_window = False
        if not skip:
            self.nonfinite_in_a_row = 0
            optimizer.step(closure=lambda: None)
            return
        optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self.nonfinite_in_a_row += 1
        self.log("train/skipped_nonfinite_steps", float(self.skipped_steps))
        log.warning("non-finite loss: optimizer step %d skipped (%d in a row)", self.trainer.global_step,
                    self.nonfinite_in_a_row)
        if self.nonfinite_in_a_row >= self.max_nonfinite_steps:
            self.stopped_nonfinite = True
            self.trainer.should_stop = True

    # ---- checkpoints ------------------------------------------------------------------------------
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.check_trainable(checkpoint)
        # Same data order on resume: each process skips the micro-batches of this epoch it already trained on,
        # of its share of the epoch, which is the same share only for as many processes.
        if self.trainer.datamodule is not None:
            progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
            # A checkpoint at an epoch's last batch resumes at the next epoch's first.
            done = 0 if progress.get("is_last_batch") else progress["current"]["ready"]
            processes = checkpoint.get("processes", self.trainer.world_size)
            if done and processes != self.trainer.world_size:
                raise InputError(f"the checkpoint stopped {done} micro-batches into an epoch split over {processes} "
                                 f"processes: resume it on {processes} (trainer.devices x trainer.num_nodes), not "
                                 f"{self.trainer.world_size}")
            self.trainer.datamodule.resume_at(done)
