"""Reading raw records (local JSONL files) and turning them into examples, bad ones reported by place."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from l2d.data.example import Example
from l2d.data.invalid import InvalidRecords

Located = tuple[str, Any]  # (where it is, e.g. "train.jsonl:12", the raw record)


def read_jsonl(path: str | Path, invalid: InvalidRecords) -> Iterator[Located]:
    """Yield (`path:line`, object) for every non-blank line; malformed lines go to `invalid`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                invalid.report(where, f"malformed JSON ({error.msg} at column {error.colno})")
                continue
            if not isinstance(record, dict):
                invalid.report(where, f"expected a JSON object, got {type(record).__name__}")
                continue
            yield where, record


def to_examples(records: Iterable[Located], convert: Callable[[Any], Example | None],
                invalid: InvalidRecords) -> Iterator[Example]:
    """Convert located records; `convert` raises ValueError for a bad record, returns None to filter one out."""
    for where, record in records:
        try:
            example = convert(record)
        except ValueError as error:
            invalid.report(where, str(error))
            continue
        if example is not None:
            yield example
