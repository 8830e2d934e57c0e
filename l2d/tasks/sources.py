"""Where task records come from: a local JSONL file, a local copy of the hub split under $L2D_DATA, or the Hugging
Face hub (optional `datasets`), each read by the data package's one reader (l2d.data.records, l2d.data.hub); a
failure is one TaskDataError naming the task's option that replaces it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from l2d.data.hub import HubSplit, HubUnavailable, load_hub, offline_fix
from l2d.data.invalid import InvalidRecordError
from l2d.data.records import read_jsonl

Record = dict[str, Any]


class TaskDataError(RuntimeError):
    """A task's data could not be loaded; the message says what to pass instead."""


def read_records(path: str | Path) -> list[Record]:
    """A task's JSONL file (`.gz` too) as records; a bad line or file is refused naming it (and the line)."""
    try:
        return [record for _, record in read_jsonl(path)]
    except (InvalidRecordError, FileNotFoundError) as error:
        raise TaskDataError(str(error)) from None


def load_hub_records(source: HubSplit, task: str, schema: str, option: str = "path") -> list[Record]:
    """Rows of a hub split, from its local copy under $L2D_DATA when there is one. Any failure (offline, no
    `datasets`, withdrawn repo) becomes one TaskDataError naming the dataset, the task option that replaces it
    (`option`: path or shots_path) and the record schema, without a deep traceback."""
    fix = (offline_fix(source.repo, source.config, source.split, f"task.options.{option}=FILE (Python: {option}=FILE)")
           + f"; one JSON object per line: {schema}")
    try:
        return [dict(row) for row in load_hub(source, fix)]
    except (HubUnavailable, InvalidRecordError) as error:
        raise TaskDataError(f"task {task!r}: {error}") from None
