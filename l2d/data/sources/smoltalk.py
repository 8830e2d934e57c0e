"""SmolTalk, the paper's training data: its subsets, category filter and guidance labels, streamed.

The mix is the paper's (Appendix B) and its labels are Table 5's, as the authors' code has them
(SakanaAI/L2D `cfgs/training.cfg` and `tasks/constants.py`): four whole subsets, plus the rows of
smol-magpie-ultra whose category is coding, data-analysis, information-seeking, math or reasoning.
(Table 5 prints the magpie categories under "self-oss-instruct/..."; the code labels them as below.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import islice
from typing import Any

from l2d.data.classes import CODING, GENERAL, MATH
from l2d.data.example import Example, chat_messages
from l2d.data.hub import DATA_ENV, HubSplit, load_hub, local_copy_name
from l2d.data.invalid import InvalidRecords
from l2d.data.records import to_examples
from l2d.data.sources.base import StreamedSource
from l2d.data.streaming import round_robin

SMOLTALK = "HuggingFaceTB/smoltalk"
MAGPIE_ULTRA = "smol-magpie-ultra"
SUBSET_LABELS = {
    "self-oss-instruct": CODING,
    "metamathqa-50k": MATH,
    "numina-cot-100k": MATH,
    "openhermes-100k": GENERAL,
}
MAGPIE_CATEGORY_LABELS = {
    "coding": CODING,
    "data-analysis": GENERAL,
    "information-seeking": GENERAL,
    "math": MATH,
    "reasoning": GENERAL,
}
PAPER_SUBSETS = (*SUBSET_LABELS, MAGPIE_ULTRA)


def smoltalk_example(subset: str, row: Mapping[str, Any]) -> Example | None:
    """The labelled example of one row, or None for a smol-magpie-ultra category outside the mix."""
    if subset == MAGPIE_ULTRA:
        label = MAGPIE_CATEGORY_LABELS.get(row.get("category"))
        if label is None:
            return None
    else:
        label = SUBSET_LABELS[subset]
    return Example(chat_messages(row.get("messages")), class_name=label)


def open_subset(subset: str, split: str, shuffle_seed: int | None = None, buffer_size: int = 10_000) -> Iterable[dict]:
    """The rows of one SmolTalk subset, streamed from the hub or its local copy under $L2D_DATA
    (shuffled through a buffer when seeded)."""
    fix = (f"give a local copy of the subset in its own schema (JSONL) at "
           f"${DATA_ENV}/{local_copy_name(SMOLTALK, subset, split)}, or train on your copy with data=jsonl "
           f"(JsonlSource: chat `messages`, optional `class_name`)")
    rows = load_hub(HubSplit(SMOLTALK, subset, split), fix, streaming=True)
    return rows if shuffle_seed is None else rows.shuffle(seed=shuffle_seed, buffer_size=buffer_size)


class SmolTalkSource(StreamedSource):
    """The paper's SmolTalk mix, streamed; subsets take turns so every stretch of training mixes them.

    subsets: which of PAPER_SUBSETS to read; seed: the shuffle seed (epoch e uses seed + e);
    val_per_subset: validation examples taken from the head of each subset's `test` split.
    """

    def __init__(self, subsets: Sequence[str] = PAPER_SUBSETS, seed: int = 0, shuffle_buffer: int = 10_000,
                 val_per_subset: int = 200) -> None:
        unknown = sorted(set(subsets) - set(PAPER_SUBSETS))
        if unknown or not subsets:
            raise ValueError(f"unknown or no SmolTalk subsets {unknown}; choose from {list(PAPER_SUBSETS)}")
        self.subsets = list(subsets)
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.val_per_subset = val_per_subset

    @property
    def class_names(self) -> tuple[str, ...]:
        labels = {SUBSET_LABELS[s] for s in self.subsets if s in SUBSET_LABELS}
        if MAGPIE_ULTRA in self.subsets:
            labels |= set(MAGPIE_CATEGORY_LABELS.values())
        return tuple(sorted(labels))

    def examples(self, subset: str, split: str, rows: Iterable[dict], invalid: InvalidRecords) -> Iterator[Example]:
        located = ((f"{SMOLTALK}/{subset}[{split}][{i}]", row) for i, row in enumerate(rows))
        return to_examples(located, partial(smoltalk_example, subset), invalid)

    def stream(self, epoch: int, invalid: InvalidRecords) -> Iterator[Example]:
        seed = self.seed + epoch
        return round_robin([self.examples(subset, "train", open_subset(subset, "train", seed, self.shuffle_buffer),
                                          invalid) for subset in self.subsets])

    def validation(self, invalid: InvalidRecords) -> list[Example]:
        return [example for subset in self.subsets
                for example in islice(self.examples(subset, "test", open_subset(subset, "test"), invalid),
                                      self.val_per_subset)]
