"""Where one step of the default job (`python -m l2d.train`) goes, on CPU, by part.

python experiments/cpu_speed/profile_step.py [--steps 12] [--threads 1] [override ...]

Runs the default job's real Lightning loop (callbacks and logging included, validation and checkpoints off) for a
few optimizer steps, with torch.profiler over the last ones, and prints milliseconds per optimizer step by part
(main path, diffusion path, loss, forward, backward, clipping, AdamW, gradient norms, logging, data), as
torch.profiler's wall time of each labelled call, plus the median wall time of a step. Overrides are the training
command's (e.g. trainer.precision=bf16-mixed).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch import Callback
from torch.profiler import ProfilerActivity, profile, record_function

from l2d.config import config_dir, register_resolvers
from l2d.model import l2d as l2d_module
from l2d.model.main_path import CausalLM
from l2d.train import supervised


# the parts, as record_function labels around the project's and Lightning's own functions: label -> (owner, name)
def parts():
    from lightning.pytorch import LightningModule

    from l2d.data.batching import PadCollator
    from l2d.lightning.callbacks import Throughput
    from l2d.lightning.module import TrainingModule

    return {"main path (frozen LM)": (CausalLM, "run_main_path"),
            "diffusion path + LM head at the slots": (l2d_module.L2DModel, "diffusion_logits"),
            "loss": (l2d_module, "cross_entropy"),  # l2d.model.loss's, as l2d.model.l2d imports it
            "forward (training_step, all of the above)": (TrainingModule, "training_step"),
            "backward": (LightningModule, "backward"),
            "gradient clipping": (TrainingModule, "configure_gradient_clipping"),
            "gradient norms (on_before_optimizer_step)": (TrainingModule, "on_before_optimizer_step"),
            "logging (self.log)": (LightningModule, "log"),
            "data (collate)": (PadCollator, "__call__"),
            "throughput callback": (Throughput, "on_train_batch_start")}


def labelled(owner, name, label):
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        with record_function(label):
            return inner(*args, **kwargs)

    setattr(owner, name, wrapper)


class StepClock(Callback):
    """Wall seconds of each optimizer step, first micro-batch to the end of its optimizer step."""

    def __init__(self):
        self.seconds, self.started, self.step = [], None, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.started is None:
            self.started, self.step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step != self.step:
            self.seconds.append(time.perf_counter() - self.started)
            self.started = None


class Profiled(Callback):
    """torch.profiler over the optimizer steps after `skip`."""

    def __init__(self, skip: int):
        self.skip, self.profiler = skip, None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.profiler is None and trainer.global_step == self.skip:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.__enter__()

    def on_train_end(self, trainer, module):
        if self.profiler is not None:
            self.profiler.__exit__(None, None, None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--profiled", type=int, default=4, help="the last N steps are profiled")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", type=int, default=0, help="also print the N most costly ops")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    register_resolvers()
    labels = parts()
    for label, (owner, name) in labels.items():
        labelled(owner, name, label)
    out = tempfile.mkdtemp(prefix="l2d_profile_")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={out}", f"trainer.max_steps={args.steps}",
                                          "+trainer.limit_val_batches=0", "+trainer.enable_checkpointing=false",
                                          "~callbacks.model_checkpoint", "trainer.enable_progress_bar=false",
                                          "trainer.enable_model_summary=false", *args.overrides])
    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    network, datamodule, module, _ = supervised(cfg)
    clock, profiled = StepClock(), Profiled(args.steps - args.profiled)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [clock, profiled]
    from lightning.pytorch.loggers import CSVLogger

    trainer = instantiate(cfg.trainer, logger=CSVLogger(out), callbacks=callbacks)
    trainer.fit(module, datamodule=datamodule)
    events = profiled.profiler.key_averages()
    steps = args.profiled
    times = {e.key: e.cpu_time_total / 1e3 / steps for e in events}
    step = statistics.median(clock.seconds[-steps:])
    print(f"precision {trainer.precision}, threads {torch.get_num_threads()}, steps {args.steps}, "
          f"overrides {args.overrides}")
    print(f"step wall time: median {1e3 * step:.0f} ms of the last {steps} "
          f"(all: {', '.join(f'{1e3 * s:.0f}' for s in clock.seconds)}); by part, ms per optimizer step:")
    for label in [*labels, "Optimizer.step#AdamW.step"]:
        print(f"  {label:45s} {times.get(label, 0):8.1f}")
    if args.table:
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.table))


if __name__ == "__main__":
    main()
