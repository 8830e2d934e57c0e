"""Callbacks: training throughput, the trainable-parameter count, atomic checkpoint files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO


class Throughput(Callback):
    """tokens/s (all real tokens) and supervised tokens/s over each optimizer step's micro-batches."""

    def __init__(self) -> None:
        self.started = None
        self.tokens = self.supervised = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        self.tokens += int(batch["attention_mask"].sum())
        self.supervised += int((batch["labels"][:, 1:] != -100).sum())

    def on_before_zero_grad(self, trainer, module, optimizer) -> None:
        if self.started is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self.started
        module.log("train/tokens_per_s", self.tokens / seconds)
        module.log("train/supervised_tokens_per_s", self.supervised / seconds)
        self.started, self.tokens, self.supervised = None, 0, 0


class TrainableParameters(Callback):
    """Logs trainable and frozen parameter counts once, as hyper-parameters and as metrics."""

    def on_fit_start(self, trainer, module) -> None:
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        for logger in trainer.loggers:
            logger.log_hyperparams({"params/trainable": trainable, "params/frozen": frozen})


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary name and rename it, so no half-written file is ever left."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        super().save_checkpoint(checkpoint, partial, storage_options)
        os.replace(partial, path)
