"""Seeded order: which examples are held out, and the shuffled, resumable order of each epoch."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch.utils.data import Sampler

T = TypeVar("T")


def hold_out(examples: list[T], size: int | float, seed: int) -> tuple[list[T], list[T]]:
    """(rest, held out): `size` examples (a count, or a fraction when a float below 1) chosen by `seed`.

    Both parts keep the input order.
    """
    count = round(size * len(examples)) if isinstance(size, float) and size < 1 else int(size)
    if count < 0 or count >= len(examples):
        raise ValueError(f"cannot hold out {size} of {len(examples)} examples and keep some for training")
    chosen = set(torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))[:count].tolist())
    rest = [example for i, example in enumerate(examples) if i not in chosen]
    return rest, [example for i, example in enumerate(examples) if i in chosen]


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation per epoch (torch.Generator seeded with seed + epoch), resumable mid-epoch.

    `skip` drops the first indices of `epoch` (a resumed run's batches already trained on); Lightning's
    `set_epoch` at the start of a later epoch clears it. `len()` stays the full epoch because Lightning
    counts the restored batches as already read.
    """

    def __init__(self, size: int, seed: int, epoch: int = 0, skip: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.epoch = epoch
        self.skip = skip

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch

    def __iter__(self):
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        return iter(order[self.skip:].tolist())

    def __len__(self) -> int:
        return self.size
