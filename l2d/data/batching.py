"""From examples to model inputs: encoding one example, padding a micro-batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from l2d.data.chat import IGNORE_INDEX, tokenize_chat
from l2d.data.example import Example

Encoded = dict[str, Any]  # input_ids: list[int], labels: list[int], class_label: int


@dataclass(frozen=True)
class ChatEncoder:
    """Example -> token ids, aligned labels and class id; None when longer than `max_length`."""

    tokenizer: Any
    max_length: int
    class_ids: dict[str | None, int]

    def __call__(self, example: Example) -> Encoded | None:
        if example.class_name not in self.class_ids:
            raise ValueError(f"example class {example.class_name!r} is not among the classes "
                             f"{[name for name in self.class_ids if name is not None]}")
        tokens = tokenize_chat(self.tokenizer, example.messages, self.max_length)
        if tokens is None:
            return None
        return {**tokens, "class_label": self.class_ids[example.class_name]}


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its eos id (padding is masked out, so any id does)."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    raise ValueError("the tokenizer has neither a pad nor an eos token to pad batches with")


@dataclass(frozen=True)
class PadCollator:
    """Right-pads a micro-batch to its longest example (dynamic padding)."""

    pad_id: int

    def __call__(self, items: list[Encoded]) -> dict[str, torch.Tensor]:
        length = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), length), self.pad_id, dtype=torch.long)  # (B, T)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)  # (B, T)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = torch.tensor(item["input_ids"])
            labels[row, :n] = torch.tensor(item["labels"])
            attention_mask[row, :n] = 1
        class_labels = torch.tensor([item["class_label"] for item in items], dtype=torch.long)  # (B,)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
                "class_labels": class_labels}
