"""python -m l2d.train [overrides]: train L2D (or a baseline) with Lightning, configured by Hydra."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate, to_absolute_path
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from l2d import tracking
from l2d.config import config_dir, register_resolvers
from l2d.export import build_network
from l2d.lightning.callbacks import AtomicCheckpointIO, WallTime
from l2d.lightning.loggers import RunCSVLogger
from l2d.lightning.module import HEALTH_METRIC, TrainingModule
from l2d.lightning.reinforce import PromptDataModule, ReinforceModule
from l2d.lightning.run_guard import RunGuard, check_room, run_fingerprint
from l2d.lightning.strategies import whole_trainable
from l2d.model.card import training_record
from l2d.model.finetune import finetuned_base
from l2d.rl.settings import Reinforce
from l2d.rl.start import mark_reinforced, starting_policy
from l2d.run_lock import hold
from l2d.validation import InputError, check_train, one_line

log = logging.getLogger(__name__)
register_resolvers()


def supervised(cfg: DictConfig):
    """(network, data module, module, trainer settings) of next-token or L2D training on `cfg.data`."""
    base, tokenizer = instantiate(cfg.model)
    if cfg.finetuned:  # train on a finetuned model: a lora/full export applied to the base, then frozen
        base = finetuned_base(base, to_absolute_path(cfg.finetuned))
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    datamodule.setup("fit")  # the class names must be known before the network is built
    # The path's random start from the seed alone: loading draws from the global stream or not depending on
    # where the weights come from (a GGUF file initialises the model before de-quantizing into it, a cached copy
    # does not), and that must not change the run.
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    network = build_network(cfg, base, datamodule.class_names)
    module = TrainingModule(network, optimizer=instantiate(cfg.optimizer), scheduler=instantiate(cfg.scheduler),
                            seed=cfg.seed, **cfg.module)
    return network, datamodule, module, {}


def reinforcement(cfg: DictConfig):
    """(network, data module, module, trainer settings) of an RL stage (`method.reinforce`) on the policy of
    the export `init`. The module steps its own optimizer (several updates per rollout batch), so Lightning's
    accumulation and clipping are off and trainer.gradient_clip_val goes to the module."""
    stage = Reinforce(**OmegaConf.to_container(cfg.method.reinforce, resolve=True))
    network, tokenizer, start = starting_policy(Path(to_absolute_path(cfg.init)), cfg.method.name)
    task, validation = stage.tasks()
    mark_reinforced(network, start, task.name, dataclasses.asdict(stage))
    prompts = f"RL prompts with their verifier: `{task.name}` {json.dumps(stage.task)}"
    datamodule = PromptDataModule(stage.steps, len(validation.problems()), stage.validation_batch_size,
                                  description=[prompts])
    module = ReinforceModule(network, tokenizer, task, validation, optimizer=instantiate(cfg.optimizer),
                             scheduler=instantiate(cfg.scheduler), rollouts=stage.steps, seed=cfg.seed,
                             gradient_clip=cfg.trainer.gradient_clip_val,
                             lr_multipliers=OmegaConf.to_container(cfg.module.lr_multipliers or OmegaConf.create()),
                             **dataclasses.asdict(stage.rollouts()))
    return network, datamodule, module, {"accumulate_grad_batches": 1, "gradient_clip_val": None}


def train(cfg: DictConfig) -> dict:
    """Compose, instantiate, fit, export; returns the final metrics (also written to metrics.json). The run holds
    its directory meanwhile (l2d.run_lock): a second run into it is refused."""
    check_train(cfg)  # before anything loads
    lock = hold(cfg.paths.output_dir) if rank_zero_only.rank == 0 else None  # DDP: the other ranks are rank 0's
    try:
        return fit_and_export(cfg)
    finally:
        if lock is not None:
            lock.release()


def fit_and_export(cfg: DictConfig) -> dict:
    wall_time = WallTime()
    output_dir = Path(cfg.paths.output_dir)
    if not cfg.ckpt_path and rank_zero_only.rank == 0:
        check_fresh(output_dir)
    L.seed_everything(cfg.seed, workers=True)
    network, datamodule, module, trainer_settings = (reinforcement(cfg) if "reinforce" in cfg.method
                                                     else supervised(cfg))
    guard = RunGuard(run_fingerprint(cfg, network), cfg.allow_change)
    checkpoint = torch.load(cfg.ckpt_path, map_location="cpu", mmap=True, weights_only=False) if cfg.ckpt_path else None
    if checkpoint is not None:  # the same run, and steps left to train, before anything is written
        guard.check(checkpoint, cfg.ckpt_path)
        check_room(checkpoint, cfg.ckpt_path, cfg.trainer.max_steps, cfg.trainer.get("max_epochs"))
    loggers = tracking.instantiate_loggers(cfg, tracking.training_identity(cfg))
    if checkpoint is not None:  # a run resumed into its own directory continues its metrics.csv at its step
        for logger in loggers:
            if isinstance(logger, RunCSVLogger):
                logger.resume_at(checkpoint["global_step"])
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [wall_time, guard]
    trainer = instantiate(cfg.trainer, logger=loggers, callbacks=callbacks, plugins=[AtomicCheckpointIO()],
                          **trainer_settings)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    with tracking.finishing(loggers):  # the W&B run stays open until the export is recorded in it
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        if getattr(module, "stopped_nonfinite", False):
            raise RuntimeError(f"stopped: {module.max_nonfinite_steps} non-finite losses in a row at step "
                               f"{trainer.global_step}; the last checkpoint holds the last finite weights")
        with whole_trainable(network):  # trainer=fsdp: every process gathers the sharded path, rank 0 writes it
            if cfg.export and trainer.is_global_zero:
                network.save_pretrained(output_dir / "export",
                                        training=training_record(cfg, trainer, datamodule, guard.record()))
                tracking.record_export(output_dir / "export", loggers)  # W&B: the run's id; online: an artifact

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics.update(wall_seconds=wall_time.seconds(), global_step=trainer.global_step,
                   trainable_parameters=network.num_trainable_parameters(), method=cfg.method.name,
                   class_names=list(datamodule.class_names), data=vars(datamodule.stats) if datamodule.stats else None)
    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        log.info("done in %.0f s: %s", metrics["wall_seconds"], {k: metrics[k] for k in metrics if "loss" in k})
        print(summary(metrics, output_dir / "export" if cfg.export else None, scoring_task()))
    return metrics


def check_fresh(directory: Path) -> None:
    """A new run never reuses the directory of another: its record and checkpoints would be lost, or mixed with
    the new run's."""
    found = [name for name, there in (("metrics.csv", (directory / "metrics.csv").is_file()),
                                      ("checkpoints", any((directory / "checkpoints").glob("*.ckpt"))))
             if there]
    if not found:
        return
    last = directory / "checkpoints" / "last.ckpt"
    resume = f"resume it with ckpt_path={last}" if last.is_file() else "it has no checkpoint to resume from; remove it"
    raise InputError(f"{directory} already holds a training run ({' and '.join(found)}): {resume}, or train into "
                     "another directory (hydra.run.dir=DIR)")


def scoring_task() -> str:
    """The task config named like the data config (data=arithmetic -> task=arithmetic), if there is one."""
    from hydra.core.hydra_config import HydraConfig

    data = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else None
    return data if data and (Path(config_dir()) / "task" / f"{data}.yaml").is_file() else "<task>"


def summary(metrics: dict, export: Path | None, task: str = "<task>") -> str:
    """What a user should look at when a run ends, and the command that scores its export."""
    minutes = metrics["wall_seconds"] / 60
    lines = [f"\ntrained {metrics['method']} for {metrics['global_step']} steps in {minutes:.1f} min"]
    at = {float(k.removeprefix("val/loss_at_t")): v for k, v in metrics.items() if k.startswith("val/loss_at_t")}
    if at:  # L2D: t = 0 is the frozen base; a path that reads x_t brings t = 1 far below it
        lines.append("validation loss by t:  " + "   ".join(f"t={t:g} {at[t]:.3f}" for t in sorted(at)))
        lines.append(f"  (t=0 is the frozen base model: {at[min(at)]:.3f}; at t=1 the path is given the answer: "
                     f"{at[max(at)]:.3f})")
        if HEALTH_METRIC in metrics:
            ratio = metrics[HEALTH_METRIC]
            verdict = "it reads x_t" if ratio <= 1 / 3 else "it barely reads x_t yet: more steps can hardly help"
            lines.append(f"health: loss(t=1) / loss(t=0.25) = {ratio:.2f} ({verdict}; a path that reads x_t "
                         "goes below 1/3)")
    elif "val/loss" in metrics:
        lines.append(f"validation loss {metrics['val/loss']:.3f}")
    if export is not None:
        levels = "solver.levels=1,2,4,8,16 " if at else ""
        lines.append(f"score it:  python -m l2d.evaluate -m checkpoint={export} task={task} {levels}"
                     "protocol=greedy,paper")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
@one_line
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/loss")  # what a Hydra sweeper optimises


if __name__ == "__main__":
    main()
