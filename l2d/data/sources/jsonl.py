"""Any local JSONL file of chats: `messages` (role/content list) or `prompt`/`response` pairs."""

from __future__ import annotations

from functools import partial
from typing import Any

from l2d.data.example import Example, chat_messages, question_answer
from l2d.data.invalid import InvalidRecords
from l2d.data.records import read_jsonl, to_examples
from l2d.data.sources.base import Loaded, Source


def jsonl_example(record: dict[str, Any], default_class: str | None = None) -> Example:
    """One record: `messages`, or `prompt` + `response`; its `class_name` field overrides `default_class`."""
    if "messages" in record:
        messages = chat_messages(record["messages"])
    elif "prompt" in record and "response" in record:
        messages = question_answer(record["prompt"], record["response"])
    else:
        raise ValueError("a record needs 'messages' or both 'prompt' and 'response'")
    class_name = record.get("class_name", default_class)
    if class_name is not None and not isinstance(class_name, str):
        raise ValueError("'class_name' must be a string or null")
    return Example(messages, class_name=class_name)


class JsonlSource(Source):
    """Chats from a local JSONL file, optionally with a JSONL validation file of the same shape.

    class_name: the class of records that have no `class_name` field (None: unlabeled).
    val_path: None lets the data module hold out part of `path` for validation.
    """

    def __init__(self, path: str, val_path: str | None = None, class_name: str | None = None) -> None:
        self.path = path
        self.val_path = val_path
        self.class_name = class_name

    def read(self, path: str, invalid: InvalidRecords) -> list[Example]:
        convert = partial(jsonl_example, default_class=self.class_name)
        return list(to_examples(read_jsonl(path, invalid), convert, invalid))

    def load(self, invalid: InvalidRecords) -> Loaded:
        validation = None if self.val_path is None else self.read(self.val_path, invalid)
        return Loaded(train=self.read(self.path, invalid), validation=validation)
