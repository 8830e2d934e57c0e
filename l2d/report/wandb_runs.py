"""W&B runs as report inputs: a group on the server (`wandb:<entity>/<project>/<group>`, or
`wandb:<project>/<group>` for the default entity), or run directories written offline
(`wandb/offline-run-*`), read straight from their `run-*.wandb` record log — the file `wandb sync`
uploads — so nothing needs the network.

An evaluation run (job type `evaluate`, see l2d.tracking) carries its results file as config and its
summary as `eval/<key>`; a training run carries the Hydra config and logs the same metric names as
metrics.csv. Both become the report's own Result and TrainingRun.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from l2d.report.records import METRICS_CSV, RESULTS_FILE, NoInputs, NotUsable, Result, TrainingRun, parse_result

log = logging.getLogger(__name__)
PREFIX = "wandb:"
RECORD_LOG = "run-*.wandb"
# The record log: a 7-byte file header, then 32 KiB blocks of chunks, each chunk with a 7-byte header
# (crc32 u32, length u16, type u8); a record too long for its block is split into first/middle/last.
FILE_HEADER, BLOCK, CHUNK_HEADER = 7, 32 * 1024, 7
FULL, LAST = 1, 4


@dataclass(frozen=True)
class WandbRun:
    path: Path  # offline: its directory; on the server: wandb:<entity>/<project>/<id>
    id: str
    name: str
    group: str
    job_type: str
    tags: list[str]
    config: dict[str, Any]
    summary: dict[str, Any]
    started: float | None  # seconds since the epoch
    history: list[dict[str, Any]] = field(repr=False, default_factory=list)


def is_group(source: str | Path) -> bool:
    return str(source).startswith(PREFIX)


# ---- offline run directories ----------------------------------------------------------------------------
def records(path: Path) -> Iterator[Any]:
    """The protobuf records of a run's record log, in order; a torn tail (a run still writing) ends it."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    if not data.startswith(b":W&B"):
        raise NotUsable(f"{path.name} is not a W&B record log")
    position, pending = FILE_HEADER, b""
    while position + CHUNK_HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < CHUNK_HEADER:  # too little room for a chunk: zero padding up to the block's end
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + CHUNK_HEADER])
        if kind == 0:  # zero padding
            position += left
            continue
        if position + CHUNK_HEADER + length > len(data):
            return
        pending += data[position + CHUNK_HEADER:position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            record = Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def parent(target: dict[str, Any], item: Any, create: bool) -> tuple[dict[str, Any], str]:
    """The dict that holds an item's key (a key, or a nested key path) and that key."""
    keys = list(item.nested_key) or [item.key]
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {}) if create else node.get(key, {})
    return node, keys[-1]


def apply(target: dict[str, Any], items: Iterable[Any]) -> None:
    """Config, summary and history items: a key (or a nested key path) and a JSON value."""
    for item in items:
        node, key = parent(target, item, create=True)
        node[key] = json.loads(item.value_json)


def remove(target: dict[str, Any], items: Iterable[Any]) -> None:
    for item in items:
        node, key = parent(target, item, create=False)
        node.pop(key, None)


def offline_run(directory: Path) -> WandbRun:
    """A run directory of wandb (offline-run-* or run-*), from its record log alone."""
    logs = sorted(directory.glob(RECORD_LOG))
    if not logs:
        raise NotUsable(f"no {RECORD_LOG} record log")
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    run = None
    for record in records(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            apply(config, run.config.update)
        elif kind == "config":
            apply(config, record.config.update)
            remove(config, record.config.remove)
        elif kind == "summary":
            apply(summary, record.summary.update)
            remove(summary, record.summary.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            apply(row, record.history.item)
            history.append(row)
    if run is None:
        raise NotUsable("the record log holds no run record")
    config.pop("_wandb", None)
    return WandbRun(path=directory, id=run.run_id, name=run.display_name, group=run.run_group,
                    job_type=run.job_type, tags=list(run.tags), config=config, summary=summary,
                    started=run.start_time.seconds or None, history=history)


def offline_runs(paths: Iterable[Path]) -> list[WandbRun]:
    """Offline runs under `paths`. A run written beside a results.json or metrics.csv that these paths
    already reach (the evaluation or training run directory itself, or one above it) is that local run
    again and is skipped; pointing at the W&B run directory itself reads it."""
    found = []
    for path in paths:
        for log_file in sorted(path.rglob(RECORD_LOG)) if path.is_dir() else []:
            local = log_file.parent.parent.parent  # <run>/wandb/offline-run-*/run-*.wandb
            written_locally = (local / RESULTS_FILE).is_file() or (local / METRICS_CSV).is_file()
            if written_locally and local.resolve().is_relative_to(path.resolve()):
                continue
            try:
                found.append(offline_run(log_file.parent))
            except NotUsable as reason:
                log.warning("skipped %s: %s", log_file.parent, reason)
    return found


# ---- a group on the server ------------------------------------------------------------------------------
def group_runs(source: str) -> list[WandbRun]:
    """Every run of a W&B group (needs an API key and the network)."""
    project, _, group = source.removeprefix(PREFIX).rpartition("/")
    if not project or not group:
        raise NoInputs(f"{source}: a W&B group is wandb:<entity>/<project>/<group> or wandb:<project>/<group>")
    import wandb

    try:
        found = list(wandb.Api(timeout=30).runs(project, filters={"group": group}))
        runs = [WandbRun(path=Path(f"{PREFIX}{run.entity}/{run.project}/{run.id}"), id=run.id, name=run.name,
                         group=run.group, job_type=run.job_type or "", tags=list(run.tags), config=dict(run.config),
                         summary=dict(run.summary), started=datetime.fromisoformat(run.created_at).timestamp(),
                         history=[] if run.job_type == "evaluate" else list(run.scan_history()))
                for run in found]
    except Exception as error:  # no key, no network, no such project: one line, and what works instead
        raise NoInputs(f"{source}: cannot read the group from W&B ({type(error).__name__}: {error}); offline run "
                       "directories (wandb/offline-run-*) need no network") from None
    if not runs:
        raise NoInputs(f"{source}: W&B has no runs in group {group!r} of {project}")
    return runs


# ---- into the report's inputs ---------------------------------------------------------------------------
def as_input(run: WandbRun) -> Result | TrainingRun:
    """An evaluation run as a Result, any other run as a TrainingRun (its logged metric columns)."""
    if run.job_type == "evaluate" or {"task", "model", "decoding"} <= set(run.config):
        summary = {key.removeprefix("eval/"): value for key, value in run.summary.items() if key.startswith("eval/")}
        summary.setdefault("metric", run.config.get("metric", "accuracy"))
        return replace(parse_result(run.path, {**run.config, "summary": summary}), started=run.started)
    columns: dict[str, list[float]] = {}
    for row in run.history:
        for name, value in row.items():
            if not name.startswith("_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                columns.setdefault(name, []).append(float(value))
    method = run.config.get("method")
    return TrainingRun(path=run.path, method=method.get("name", "run") if isinstance(method, dict) else "run",
                       overrides=list(run.config.get("overrides") or []),
                       trainable_parameters=run.config.get("params/trainable"),
                       wall_seconds=run.summary.get("_runtime"), columns=columns)
