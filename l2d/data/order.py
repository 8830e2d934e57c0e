"""Seeded order: which examples are held out, and the shuffled, resumable order of each epoch."""

from __future__ import annotations

from itertools import islice
from typing import TypeVar

import torch
from torch.utils.data import DistributedSampler

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


class EpochShuffleSampler(DistributedSampler):
    """A fresh permutation per epoch (torch.Generator seeded with seed + epoch), resumable mid-epoch, split
    over the `replicas` processes of data parallel training.

    Process `rank` takes every replicas-th index of the permutation from its rank on (the permutation padded
    with its own head to a multiple of `replicas`, as torch's DistributedSampler pads), so the processes
    together read the epoch once; with one replica it is the permutation itself. Being a DistributedSampler,
    Lightning uses it as it is instead of wrapping it in its own, which would shuffle a second time by another
    seed and take len() for the number of indices a resumed epoch yields.

    `skip` drops this process's first indices of `epoch` (a resumed run's micro-batches already trained on);
    `set_epoch` to a later epoch clears it. `len()` stays this process's whole epoch because Lightning counts
    the restored batches as already read.
    """

    def __init__(self, size: int, seed: int, epoch: int = 0, skip: int = 0, replicas: int = 1,
                 rank: int = 0) -> None:
        super().__init__(range(size), num_replicas=replicas, rank=rank, shuffle=True, seed=seed)
        self.epoch = epoch
        self.skip = skip

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        super().set_epoch(epoch)

    def __iter__(self):
        return islice(super().__iter__(), self.skip, None)
