"""Weights & Biases across the workflow: who a run is (project, group, name, tags), the link from an
export to the training run that made it, and an evaluation as a W&B run.

Groups: a multirun is one group (its sweep directory's name), a single run is a group of its own
(its run directory's name). An evaluation of an export made by a W&B training run joins that run's
project and group, so a training run and all of its evaluations sit together; the job types
`train` and `evaluate` tell them apart, and every run is tagged with its command-line overrides.
Without a key or a network the runs are written offline (`wandb sync` uploads them later).
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from l2d.files import write_atomically
from l2d.lightning.loggers import wandb_logger

log = logging.getLogger(__name__)
RUN_RECORD = "wandb_run.json"  # in export/: the W&B training run that wrote these weights
WANDB_TARGET = f"{wandb_logger.__module__}.{wandb_logger.__qualname__}"
# Override keys that say where and how a job runs, not what it computes: left out of names and tags.
UNTAGGED = ("logger", "hydra", "paths", "checkpoint", "progress", "trainer.enable_")
MAX_TAG = 64  # W&B refuses longer tags
# Numeric settings W&B can draw the score against (x axis `setting/<name>`, y axis `score_by/<name>`).
SETTINGS = ("sigma", "guidance")


# ---- who a run is ----------------------------------------------------------------------------------
def job_overrides() -> list[str]:
    """The job's own command-line overrides (in a multirun: this job's values of the swept keys)."""
    if not HydraConfig.initialized():
        return []
    return [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith(UNTAGGED)]


def sweep_name() -> str | None:
    """The multirun's directory name (one W&B group per sweep); None for a single run."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def own_group() -> str | None:
    """The sweep's directory name in a multirun, else the run directory's name."""
    if not HydraConfig.initialized():
        return None
    return sweep_name() or Path(HydraConfig.get().runtime.output_dir).name


def tags(*values: str) -> list[str]:
    return list(dict.fromkeys(value[:MAX_TAG] for value in values if value))


def training_identity(cfg: DictConfig) -> dict[str, Any]:
    """W&B init arguments of a training run: named by its method and overrides, grouped by its sweep."""
    overrides = job_overrides()
    return {"project": "l2d", "group": own_group(), "job_type": "train",
            "name": " ".join([cfg.method.name, *overrides]), "tags": tags(cfg.method.name, *overrides),
            "config": {"overrides": overrides, "sweep": sweep_name()}}


def checkpoint_name(checkpoint: str | None, label: str | None, trained_by: dict | None) -> str:
    """What an evaluation calls its checkpoint: the label, the W&B training run, or the run directory."""
    if label:
        return label
    if trained_by:
        return trained_by["name"]
    if not checkpoint:
        return "base"
    path = Path(checkpoint).resolve()
    step = f"@{path.stem}" if path.suffix == ".ckpt" else ""  # <run>/checkpoints/step000500.ckpt: <run>@step000500
    run = path.parent.parent if step else path.parent  # <run>/export, or <sweep>/<job number>/export
    return (f"{run.parent.name}/{run.name}" if run.name.isdigit() else run.name) + step


def evaluation_identity(cfg: DictConfig, result: dict[str, Any]) -> dict[str, Any]:
    """W&B init arguments of an evaluation: it joins the project and group of the training run that made
    its checkpoint (recorded in the export), is named by that checkpoint, the task and its overrides, and
    carries the evaluation's settings (decoding, model, task) as its config."""
    trained_by = read_record(cfg.checkpoint) if cfg.checkpoint else None
    overrides = job_overrides()
    name = " ".join([f"{checkpoint_name(cfg.checkpoint, cfg.label, trained_by)}:", result["task"],
                     *(o for o in overrides if not o.startswith("task="))])
    config = {key: value for key, value in result.items() if key not in ("records", "summary")}
    config.update(overrides=overrides, sweep=sweep_name(), training_run=trained_by)
    identity = {"project": "l2d", "group": own_group(), "job_type": "evaluate", "name": name,
                "tags": tags(result["model"]["method"], result["task"], f"protocol={result['protocol']['name']}",
                                 *overrides), "config": config}
    if trained_by:
        identity.update(project=trained_by["project"], group=trained_by["group"])
        if trained_by.get("entity"):
            identity["entity"] = trained_by["entity"]
    return identity


def instantiate_loggers(cfg: DictConfig, identity: dict[str, Any]) -> list:
    """The loggers of the `logger` group; the W&B one gets `identity` where its config leaves null."""
    loggers = []
    for entry in cfg.logger.values():
        if entry.get("_target_") != WANDB_TARGET:
            loggers.append(instantiate(entry))
            continue
        given = OmegaConf.to_container(entry, resolve=True)
        chosen = {key: value for key, value in identity.items() if given.get(key) is None}
        chosen["tags"] = tags(*(given.get("tags") or []), *identity["tags"])
        # One dict (a `config` keyword would clash with instantiate's own), handed over as plain containers.
        loggers.append(instantiate({**given, **chosen, "_convert_": "all"}))
    return loggers


@contextmanager
def finishing(loggers: list):
    """Loggers are closed whatever happens; a W&B run whose job raised is marked failed."""
    status = "failed"
    try:
        yield
        status = "success"
    finally:
        for logger in loggers:
            logger.finalize(status)
        if any(isinstance(logger, WandbLogger) for logger in loggers):
            import wandb

            wandb.finish(exit_code=0 if status == "success" else 1)


# ---- the export's link to its training run ------------------------------------------------------------
def record_export(directory: Path, loggers: list) -> None:
    """Write RUN_RECORD (the W&B run's id, project, entity, group, name) into the export; an online run
    with `log_model` also uploads the export as a model artifact. Offline runs never wait on the network."""
    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        run = logger.experiment
        record = {"id": run.id, "project": run.project, "entity": run.entity or None, "group": run.group,
                  "name": run.name, "offline": run.offline, "artifact": None}
        upload = getattr(logger, "upload_export", False) and not run.offline
        if upload:
            record["artifact"] = f"l2d-export-{run.id}"
        text = json.dumps(record, indent=1) + "\n"
        write_atomically(directory / RUN_RECORD, lambda path, text=text: path.write_text(text))
        if upload:
            import wandb

            artifact = wandb.Artifact(record["artifact"], type="model",
                                      description="the trained weights (L2D: the diffusion path) and decode.json")
            artifact.add_dir(str(directory))
            run.log_artifact(artifact)


def read_record(checkpoint: str | Path) -> dict[str, Any] | None:
    """The W&B training run recorded in an export; None when it was trained without W&B."""
    path = Path(checkpoint) / RUN_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it to evaluate without the W&B link") from None
    missing = [key for key in ("id", "project", "group", "name") if key not in record]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; delete it to evaluate without the W&B link")
    return record


# ---- an evaluation as a W&B run -------------------------------------------------------------------------
PROBLEM_COLUMNS = ["id", "prompt", "completion", "answer", "target", "correct", "nfe"]


def evaluation_metrics(result: dict[str, Any]) -> dict[str, float]:
    """`eval/<key>` for every number of the results summary (score, its 95% interval, pass@k, mean NFE
    per token, tokens/s, counts) and the wall time."""
    metrics = {f"eval/{key}": float(value) for key, value in result["summary"].items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    metrics["eval/wall_seconds"] = float(result["wall_seconds"])
    return metrics


def settings(cfg: DictConfig, result: dict[str, Any]) -> dict[str, float]:
    """The numeric settings of this evaluation that a sweep varies: σ of an L2D checkpoint, guidance w_g."""
    found = {"guidance": result["decoding"].get("guidance")}
    if cfg.checkpoint:
        found["sigma"] = result["model"].get("sigma")  # an L2D checkpoint's (l2d.export.load)
    return {name: float(value) for name, value in found.items() if value is not None}


def problems_table(records: list[dict[str, Any]]):
    """One row per problem, its first completion: what a user reads to see the failures."""
    import wandb

    return wandb.Table(columns=PROBLEM_COLUMNS, data=[
        [str(r["id"]), r["question"], r["generations"][0], as_text(r.get("answer")), as_text(r.get("target")),
         bool(r["correct"]), float(r["nfe"])] for r in records])


def as_text(value: Any) -> str | None:
    """Answers and targets are strings, numbers or lists depending on the task; one column type."""
    return None if value is None else str(value)


def log_to_wandb(run, result: dict[str, Any], metrics: dict[str, float], values: dict[str, float],
                 trained_by: dict[str, Any] | None) -> None:
    """define_metric makes NFE the x axis of every `eval/` chart and each setting the x axis of its
    `score_by/` chart, so a group's runs draw score against NFE, σ and w_g with no hand-made panel."""
    run.define_metric("eval/mean_nfe")
    for key in metrics:
        if key != "eval/mean_nfe":
            run.define_metric(key, step_metric="eval/mean_nfe")
    for name in values:
        run.define_metric(f"setting/{name}")
        run.define_metric(f"score_by/{name}", step_metric=f"setting/{name}")
    if trained_by and trained_by.get("artifact") and not run.offline:  # lineage: this export, that run
        try:
            run.use_artifact(f"{trained_by['artifact']}:latest")
        except Exception as error:  # the link is a nicety; the scores must still land
            log.warning("W&B: could not link the export artifact %s: %s", trained_by["artifact"], error)
    run.log({**metrics, **{f"setting/{name}": value for name, value in values.items()},
             **{f"score_by/{name}": metrics["eval/score"] for name in values},
             "problems": problems_table(result["records"])})


def log_evaluation(cfg: DictConfig, result: dict[str, Any]) -> None:
    """Send one evaluation to every logger of the `logger` group: its summary numbers to each; to W&B
    also the settings as config, the chart axes and the table of problems."""
    identity = evaluation_identity(cfg, result)
    loggers = instantiate_loggers(cfg, identity)
    metrics = evaluation_metrics(result)
    with finishing(loggers):
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                log_to_wandb(logger.experiment, result, metrics, settings(cfg, result),
                             identity["config"]["training_run"])
            else:
                logger.log_hyperparams(identity["config"])
                logger.log_metrics(metrics, step=0)
