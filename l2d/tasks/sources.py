"""Where task records come from: a local JSONL file, a local copy of the hub split under $L2D_DATA
(l2d.data.hub), or the Hugging Face hub (optional `datasets`)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l2d.data.hub import local_copy, offline_fix
from l2d.data.records import utf8_lines

Record = dict[str, Any]


class TaskDataError(RuntimeError):
    """A task's data could not be loaded; the message says what to pass instead."""


@dataclass(frozen=True)
class HubSplit:
    repo: str
    config: str | None
    split: str
    revision: str | None = None

    def __str__(self) -> str:
        config = f", config {self.config}" if self.config else ""
        revision = f", revision {self.revision}" if self.revision else ""
        return f"{self.repo} (split {self.split}{config}{revision})"


def read_jsonl(path: str | Path) -> list[Record]:
    """One JSON object per non-blank line; `.gz` files are decompressed. A line that is not JSON or not UTF-8, or a
    file without a record, is refused naming the file (and the line)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as lines:
            records = [_parse(line, path, number, problem) for number, line, problem in utf8_lines(lines)]
    except OSError as error:
        raise TaskDataError(f"cannot read {path}: {error.strerror or error}") from None
    if not records:
        raise TaskDataError(f"{path}: empty, no records in it (one JSON object per line)")
    return records


def _parse(line: str | None, path: Path, number: int, problem: str) -> Record:
    if line is None:
        raise TaskDataError(f"{path}:{number}: {problem}")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise TaskDataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise TaskDataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
    return record


def load_hub(source: HubSplit, task: str, schema: str, option: str = "path") -> list[Record]:
    """Rows of a hub split, from its local copy under $L2D_DATA when there is one. Any failure
    (offline, no `datasets`, withdrawn repo) becomes one TaskDataError naming the dataset, the task
    option that replaces it (`option`: path or shots_path) and the record schema, without a deep traceback."""
    local = local_copy(source.repo, source.config, source.split)
    if local is not None:
        return read_jsonl(local)
    fix = (offline_fix(source.repo, source.config, source.split, f"task.options.{option}=FILE (Python: {option}=FILE)")
           + f"; one JSON object per line: {schema}")
    try:
        import datasets  # optional dependency (l2d[hub]); imported only when the hub is used
    except ImportError:
        raise TaskDataError(f"task {task!r} needs {source} but the `datasets` package is not installed "
                            f"(pip install 'l2d[hub]'); or {fix}") from None
    try:
        rows = datasets.load_dataset(source.repo, source.config, split=source.split, revision=source.revision)
    except Exception as error:  # the hub raises many types (ConnectionError, HfHubHTTPError, ...)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TaskDataError(f"task {task!r}: could not load {source} from the Hugging Face hub "
                            f"({reason}). Offline? Then {fix}") from None
    return [dict(row) for row in rows]
