"""Reading raw records (local JSONL files) and turning them into examples, bad ones reported by place."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from l2d.data.example import Example
from l2d.data.invalid import InvalidRecordError, InvalidRecords

Located = tuple[str, Any]  # (where it is, e.g. "train.jsonl:12", the raw record)


def utf8_lines(handle: IO[bytes]) -> Iterator[tuple[int, str | None, str]]:
    """(number, text, "") of every non-blank line of a file opened in binary, numbered from 1; a line that is not
    UTF-8 comes as (number, None, what is wrong), so that a reader names its line (decoding the whole file as text
    would fail at a byte offset of the file, naming no line)."""
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, None, (f"not UTF-8 text (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the "
                                 "line; save the file as UTF-8)")
            continue
        if text.strip():
            yield number, text, ""


def read_jsonl(path: str | Path, invalid: InvalidRecords) -> Iterator[Located]:
    """Yield (`path:line`, object) for every non-blank line; malformed lines, and lines that are not UTF-8, go to
    `invalid`. A file without a single record is refused, naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    empty = True
    with path.open("rb") as lines:
        for number, line, problem in utf8_lines(lines):
            empty = False
            where = f"{path}:{number}"
            if line is None:
                invalid.report(where, problem)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                invalid.report(where, f"malformed JSON ({error.msg} at column {error.colno})")
                continue
            if not isinstance(record, dict):
                invalid.report(where, f"expected a JSON object, got {type(record).__name__}")
                continue
            yield where, record
    if empty:
        raise InvalidRecordError(f"{path}: empty, no records in it (one JSON object per line)")


def check_text(path: Path) -> None:
    """A JSONL file read by another reader (`datasets`' JSON loader, which names neither file nor line): refused,
    naming it, when it is empty or has a line that is not UTF-8."""
    empty = True
    with path.open("rb") as lines:
        for number, line, problem in utf8_lines(lines):
            if line is None:
                raise InvalidRecordError(f"{path}:{number}: {problem}")
            empty = False
    if empty:
        raise InvalidRecordError(f"{path}: empty, no records in it (one JSON object per line)")


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
