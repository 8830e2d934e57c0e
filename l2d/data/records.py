"""Reading raw records (local JSONL files) and turning them into examples, bad ones reported by place."""

from __future__ import annotations

import gzip
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


def read_jsonl(path: str | Path, invalid: InvalidRecords | None = None) -> Iterator[Located]:
    """Yield (`path:line`, object) for every non-blank line of a JSON-lines file (`.gz` is decompressed). A line that
    is not UTF-8, not JSON or not an object goes to `invalid` (refused naming its place, or skipped and counted);
    without `invalid` the first such line is refused. A file that is not there (FileNotFoundError), cannot be read,
    or holds no record is refused naming it. The one reader of JSONL: training data, task files, hub split copies."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"cannot read {path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    empty = True
    try:
        with opener(path, "rb") as lines:
            for number, line, problem in utf8_lines(lines):
                empty = False
                where = f"{path}:{number}"
                record, problem = (None, problem) if line is None else parse_object(line)
                if not problem:
                    yield where, record
                elif invalid is None:
                    raise InvalidRecordError(f"{where}: {problem}")
                else:
                    invalid.report(where, problem)
    except OSError as error:  # unreadable, or a .gz that is not gzip
        raise InvalidRecordError(f"cannot read {path}: {error.strerror or error}") from None
    if empty:
        raise InvalidRecordError(f"{path}: empty, no records in it (one JSON object per line)")


def parse_object(line: str) -> tuple[Any, str]:
    """(the JSON object of a line, "") or (None, what is wrong with it)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"malformed JSON ({error.msg} at column {error.colno})"
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}"
    return record, ""


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
