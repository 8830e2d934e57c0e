"""Callbacks: training throughput, the run's wall time across resumes, the trainable-parameter count, the W&B
loss-by-t chart, atomic checkpoint files."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from l2d.data.chat import IGNORE_INDEX, next_token_labels
from l2d.files import DiskFull, is_disk_full


class Throughput(Callback):
    """tokens/s (all real tokens) and supervised tokens/s per optimizer step: from the start of its first
    micro-batch to the end of its last, forward, backward and the step itself."""

    def __init__(self) -> None:
        self.started = None
        self.step = 0
        self.tokens = self.supervised = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if not isinstance(batch, dict):  # an RL stage's batch is a rollout number; it logs its own tokens/s
            return
        if self.started is None:
            self.started, self.step = time.perf_counter(), trainer.global_step
        self.tokens += int(batch["attention_mask"].sum())
        self.supervised += int((next_token_labels(batch["labels"]) != IGNORE_INDEX).sum())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.started is None or trainer.global_step == self.step:  # micro-batches still accumulating
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self.started
        module.log("train/tokens_per_s", self.tokens / seconds)
        module.log("train/supervised_tokens_per_s", self.supervised / seconds)
        self.started, self.tokens, self.supervised = None, 0, 0


class WallTime(Callback):
    """The run's wall time over all its processes: a checkpoint stores the seconds spent up to it and a resumed
    run adds its own (the time between the last checkpoint and an interruption is lost with the work of it)."""

    def __init__(self) -> None:
        self.started, self.before = time.time(), 0.0

    def seconds(self) -> float:
        return self.before + time.time() - self.started

    def state_dict(self) -> dict:
        return {"seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before = float(state_dict["seconds"])  # this process's own time still counts from its start


class TrainableParameters(Callback):
    """Logs trainable and frozen parameter counts once, as hyper-parameters and as metrics."""

    def on_fit_start(self, trainer, module) -> None:
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        for logger in trainer.loggers:
            logger.log_hyperparams({"params/trainable": trainable, "params/frozen": frozen})


class LossByTChart(Callback):
    """W&B: after each validation, the loss at fixed t over the same positions and noise and the size
    of w_d(t) (the module's `val/loss_at_t*` and `val/w_d_at_t*`, not recomputed) as line plots against
    t, one line per validation so far: the path learning to read x_t is one picture."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.curves: dict[str, list[list[float]]] = {"loss": [], "w_d": []}

    def on_validation_end(self, trainer, module) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        timesteps = getattr(module, "val_timesteps", ())
        names = {what: [f"val/{what}_at_t{t:g}" for t in timesteps] for what in self.curves}
        logged = all(name in trainer.callback_metrics for group in names.values() for name in group)
        if trainer.sanity_checking or not loggers or not timesteps or not logged:  # L2D runs with W&B only
            return
        import wandb

        self.steps.append(trainer.global_step)
        charts = {}
        for what, curves in self.curves.items():
            curves.append([float(trainer.callback_metrics[name]) for name in names[what]])
            charts[f"val/{what}_vs_t"] = wandb.plot.line_series(
                xs=list(timesteps), ys=curves, keys=[f"step {step}" for step in self.steps],
                title=f"validation {'loss' if what == 'loss' else '|w_d(t)|'} at fixed t", xname="t")
        for logger in loggers:
            logger.log_metrics(charts, step=trainer.global_step)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "curves": self.curves}  # a resumed run keeps the earlier lines

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps, self.curves = state_dict["steps"], state_dict["curves"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary name and rename it, so no half-written file is ever left. A full disk
    ends the run in one line naming the checkpoint and the earlier ones, which are intact."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            super().save_checkpoint(checkpoint, partial, storage_options)
            os.replace(partial, path)
        except BaseException as error:
            partial.unlink(missing_ok=True)
            if is_disk_full(error):
                code = error.errno if isinstance(error, OSError) and error.errno else errno.ENOSPC
                raise DiskFull(code, f"no space left on the device writing the checkpoint {path}: "
                                     f"{earlier_checkpoints(path.parent)}, and nothing half-written is left "
                                     "(free some space; a run resumes from its last.ckpt)") from error
            raise


def earlier_checkpoints(directory: Path) -> str:
    """What a failed checkpoint write left: the checkpoints already in `directory`, whole (each was renamed into
    place only once written)."""
    found = sorted(path.name for path in directory.glob("*.ckpt"))
    if not found:
        return f"{directory} holds no earlier checkpoint"
    many = len(found) > 1
    return (f"the earlier checkpoint{'s' if many else ''} {', '.join(found)} in {directory} "
            f"{'are' if many else 'is'} intact")
