"""Training data: sources of chat examples, chat tokenisation with loss masks, batching and order."""

from l2d.data.chat import IGNORE_INDEX, next_token_labels, tokenize_chat
from l2d.data.example import Example
from l2d.data.invalid import InvalidRecordError, InvalidRecords

__all__ = ["IGNORE_INDEX", "Example", "InvalidRecordError", "InvalidRecords", "next_token_labels", "tokenize_chat"]
