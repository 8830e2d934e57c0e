"""GSM8K grade-school math: the hub's `openai/gsm8k` train split, or a local copy of it (question/answer records)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from l2d.data.classes import MATH
from l2d.data.example import Example, question_answer
from l2d.data.hub import HubSplit, load_hub, local_copy, offline_fix
from l2d.data.invalid import InvalidRecords
from l2d.data.records import Located, read_jsonl, to_examples
from l2d.data.sources.base import Loaded, Source
from l2d.data.splits import GSM8K_HELDOUT_SIZE, split_heldout

GSM8K = ("openai/gsm8k", "main", "train")  # repo, config, split


def gsm8k_example(record: Any) -> Example:
    """The problem as the user turn, the reference solution (ending `#### N`) as the assistant's."""
    if "question" not in record or "answer" not in record:
        raise ValueError("a GSM8K record needs 'question' and 'answer'")
    return Example(question_answer(record["question"], record["answer"]), class_name=MATH)


class GSM8KSource(Source):
    """The GSM8K training split minus its fixed held-out slice, which becomes the validation set.

    The slice (`l2d.data.splits`, the last GSM8K_HELDOUT_SIZE records in file order) is the one the
    `gsm8k_heldout` evaluation task scores, so training never sees it.
    path: a local copy of the train split (JSONL, keys question/answer); None reads the copy under
    $L2D_DATA (l2d.data.hub) when there is one, else `openai/gsm8k` (main, train) from the hub.
    """

    def __init__(self, path: str | None = None, heldout_size: int = GSM8K_HELDOUT_SIZE) -> None:
        self.path = path
        self.heldout_size = heldout_size

    def records(self, invalid: InvalidRecords) -> Iterable[Located]:
        path = self.path or local_copy(*GSM8K)
        if path is not None:
            return read_jsonl(path, invalid)
        fix = offline_fix(*GSM8K, "data.sources.0.path=FILE (Python: GSM8KSource(path=FILE))")
        rows = load_hub(HubSplit(*GSM8K), fix)
        return ((f"openai/gsm8k[train][{i}]", row) for i, row in enumerate(rows))

    def load(self, invalid: InvalidRecords) -> Loaded:
        # Split raw records, not surviving examples, so the slice is the same whatever gets skipped.
        records = list(self.records(invalid))
        train, heldout = split_heldout(records, self.heldout_size)
        return Loaded(train=list(to_examples(train, gsm8k_example, invalid)),
                      validation=list(to_examples(heldout, gsm8k_example, invalid)))
