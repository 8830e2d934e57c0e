"""python -m l2d.train [overrides]: train L2D (or a baseline) with Lightning, configured by Hydra."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf

from l2d.config import config_dir, register_resolvers
from l2d.lightning.callbacks import AtomicCheckpointIO
from l2d.lightning.module import TrainingModule
from l2d.model.finetune import finetuned_base

log = logging.getLogger(__name__)
register_resolvers()


def build_network(cfg: DictConfig, base, class_names: list[str]):
    """The method's network around `base`; with guidance, one class per data class (0 = null)."""
    if not cfg.method.get("guidance"):
        return instantiate(cfg.method.network, base=base)
    if not class_names:
        raise ValueError("method.guidance=true needs labelled data, but the data has no class names")
    network = OmegaConf.to_container(cfg.method.network, resolve=True)
    if "config" not in network:
        raise ValueError(f"method.guidance=true needs an L2D method (l2d_lora, l2d_full), not {cfg.method.name}")
    network["config"].update(num_classes=len(class_names), class_names=list(class_names))
    return instantiate(network, base=base)


def train(cfg: DictConfig) -> dict:
    """Compose, instantiate, fit, export; returns the final metrics (also written to metrics.json)."""
    started = time.time()
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    base, tokenizer = instantiate(cfg.model)
    if cfg.finetuned:  # train on a finetuned model: a lora/full export applied to the base, then frozen
        base = finetuned_base(base, to_absolute_path(cfg.finetuned))
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    datamodule.setup("fit")  # the class names must be known before the network is built
    network = build_network(cfg, base, datamodule.class_names)
    module = TrainingModule(network, optimizer=instantiate(cfg.optimizer), scheduler=instantiate(cfg.scheduler),
                            **cfg.module)
    loggers = [instantiate(c) for c in cfg.logger.values()]
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    trainer = instantiate(cfg.trainer, logger=loggers, callbacks=callbacks, plugins=[AtomicCheckpointIO()])
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    finally:
        for logger in loggers:
            logger.finalize("success")
        if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
            import wandb

            wandb.finish()
    if module.stopped_nonfinite:
        raise RuntimeError(f"stopped: {module.max_nonfinite_steps} non-finite losses in a row at step "
                           f"{trainer.global_step}; the last checkpoint holds the last finite weights")

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics.update(wall_seconds=time.time() - started, global_step=trainer.global_step,
                   trainable_parameters=network.num_trainable_parameters(), method=cfg.method.name,
                   class_names=list(datamodule.class_names), data=vars(datamodule.stats))
    if cfg.export and trainer.is_global_zero:
        network.save_pretrained(output_dir / "export")
        (output_dir / "export" / "decode.json").write_text(json.dumps(OmegaConf.to_container(cfg.solver), indent=2))
    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        log.info("done in %.0f s: %s", metrics["wall_seconds"], {k: metrics[k] for k in metrics if "loss" in k})
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/loss")  # what a Hydra sweeper optimises


if __name__ == "__main__":
    main()
