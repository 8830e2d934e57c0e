"""Reading the inputs: evaluation `results.json` files and training run directories (`metrics.csv`), and,
through l2d.report.wandb_runs, W&B runs; `collect` gathers them all."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from omegaconf import OmegaConf
from yaml import YAMLError

from l2d.report import wandb_runs
from l2d.report.records import (
    METRICS_CSV,
    METRICS_JSON,
    RESULTS_FILE,
    NoInputs,
    NotUsable,
    Result,
    TrainingRun,
    parse_result,
)

log = logging.getLogger(__name__)


def read_result(path: Path) -> Result:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NotUsable(f"not valid JSON ({error})") from error
    except OSError as error:
        raise NotUsable(f"unreadable ({error.strerror})") from error
    return parse_result(path, data)


def read_columns(path: Path) -> dict[str, list[float]]:
    """CSVLogger rows are sparse: each row fills only the columns logged at that moment."""
    columns: dict[str, list[float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for name, value in row.items():
                if name and value not in (None, ""):
                    columns.setdefault(name, []).append(float(value))
    return columns


def read_run(directory: Path) -> TrainingRun:
    try:
        columns = read_columns(directory / METRICS_CSV)
    except (ValueError, csv.Error) as error:
        raise NotUsable(f"{METRICS_CSV} is not numeric CSV ({error})") from error
    except OSError as error:
        raise NotUsable(f"{METRICS_CSV} is unreadable ({error.strerror})") from error
    metrics_file, config_file = directory / METRICS_JSON, directory / ".hydra" / "config.yaml"
    overrides_file = directory / ".hydra" / "overrides.yaml"
    try:
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
        method = metrics.get("method")
        if method is None and config_file.is_file():  # a run still in progress has no metrics.json yet
            method = OmegaConf.select(OmegaConf.load(config_file), "method.name")
        overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
    except (ValueError, OSError, YAMLError) as error:  # the run's metrics.json or .hydra files are damaged
        raise NotUsable(f"its {METRICS_JSON} or .hydra/ files are damaged ({str(error).splitlines()[0]})") from error
    return TrainingRun(path=directory, method=method or "run", overrides=overrides,
                       trainable_parameters=metrics.get("trainable_parameters"),
                       wall_seconds=metrics.get("wall_seconds"), columns=columns)


def candidate_files(paths: Iterable[Path]) -> list[Path]:
    """The given files, and results.json / metrics.csv found under the given directories (each once)."""
    found: dict[Path, None] = {}
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        files = [path] if path.is_file() else sorted([*path.rglob(RESULTS_FILE), *path.rglob(METRICS_CSV)])
        found.update((file.resolve(), None) for file in files)
    return list(found)


def collect(paths: Sequence[Path | str]) -> tuple[list[Result], list[TrainingRun]]:
    """Every usable result and training run under `paths` (files and directories, W&B offline run
    directories, or a W&B group `wandb:<entity>/<project>/<group>`); unusable files are skipped
    with a warning."""
    local = [Path(path) for path in paths if not wandb_runs.is_group(path)]
    found = [run for path in paths if wandb_runs.is_group(path) for run in wandb_runs.group_runs(str(path))]
    results, runs = [], []
    for run in found + wandb_runs.offline_runs(local):
        try:
            made = wandb_runs.as_input(run)
        except NotUsable as reason:
            log.warning("skipped W&B run %s: %s", run.path, reason)
            continue
        (results if isinstance(made, Result) else runs).append(made)
    for file in candidate_files(local):
        try:
            if file.name == METRICS_CSV and (file.parent / RESULTS_FILE).is_file():
                continue  # an evaluation's own logger row; its results.json is the record
            if file.name in (METRICS_CSV, METRICS_JSON) and (file.parent / METRICS_CSV).is_file():
                runs.append(read_run(file.parent))
            elif file.suffix == ".json":
                results.append(read_result(file))
            else:
                raise NotUsable(f"neither a {RESULTS_FILE} nor a {METRICS_CSV}")
        except NotUsable as reason:
            log.warning("skipped %s: %s", file, reason)
    if not results and not runs:
        raise NoInputs(f"no results or training runs found under {', '.join(map(str, paths))}")
    return results, unique_runs(runs)


def unique_runs(runs: list[TrainingRun]) -> list[TrainingRun]:
    """A run given both as its metrics.csv and as its metrics.json counts once."""
    return list({run.path: run for run in runs}.values())
