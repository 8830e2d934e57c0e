"""Training batches from streamed sources, in a fixed order that a resumed run can skip into."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from l2d.data.batching import ChatEncoder, Encoded
from l2d.data.example import Example
from l2d.data.invalid import InvalidRecords

T = TypeVar("T")
Stream = Callable[[int, InvalidRecords], Iterator[Example]]  # (epoch, bad-record policy) -> examples


def round_robin(iterables: Iterable[Iterable[T]]) -> Iterator[T]:
    """One item from each in turn, dropping each as it runs out."""
    iterators = deque(iter(iterable) for iterable in iterables)
    while iterators:
        iterator = iterators.popleft()
        try:
            item = next(iterator)
        except StopIteration:
            continue
        iterators.append(iterator)
        yield item


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class StreamedBatches(IterableDataset):
    """Collated micro-batches of one epoch of a stream (use with `DataLoader(batch_size=None)`).

    Batches are made here, not by the DataLoader, so that their order is fixed whatever the worker
    count: every worker reads and encodes the whole stream and yields every W-th batch in turn, which
    is the order in which the DataLoader collects them. (Workers give background prefetch here, not
    a speed-up.) `skip_batches` drops the first N batches of the epoch, for an exact resume.
    """

    def __init__(self, stream: Stream, encode: ChatEncoder, collate: Callable[[list[Encoded]], dict],
                 batch_size: int, epoch: int = 0, skip_batches: int = 0, skip_invalid: bool = False) -> None:
        self.stream = stream
        self.encode = encode
        self.collate = collate
        self.batch_size = batch_size
        self.epoch = epoch
        self.skip_batches = skip_batches
        self.skip_invalid = skip_invalid

    def set_epoch(self, epoch: int) -> None:
        """Move to `epoch`; the skip belongs to the epoch being resumed only."""
        if epoch != self.epoch:
            self.skip_batches = 0
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        invalid = InvalidRecords(self.skip_invalid)
        counts = {"kept": 0, "too_long": 0}

        def encoded() -> Iterator[Encoded]:
            for example in self.stream(self.epoch, invalid):
                item = self.encode(example)
                counts["kept" if item is not None else "too_long"] += 1
                if item is not None:
                    yield item

        batches = islice(chunks(encoded(), self.batch_size), self.skip_batches, None)
        for index, batch in enumerate(batches):
            if index % workers == worker:
                yield self.collate(batch)
        if counts["kept"] == 0:
            raise ValueError(f"the streamed training data is empty after filtering ({counts['too_long']} longer "
                             f"than max_length={self.encode.max_length}, {invalid.count} invalid skipped)")


class StreamedLoader(DataLoader):
    """A DataLoader of StreamedBatches that moves them to the trainer's epoch whenever it is iterated
    (Lightning calls `set_epoch` on samplers only, and an iterable dataset has none)."""

    def __init__(self, batches: StreamedBatches, current_epoch: Callable[[], int], num_workers: int = 0) -> None:
        super().__init__(batches, batch_size=None, num_workers=num_workers)
        self.current_epoch = current_epoch

    def __iter__(self):
        self.dataset.set_epoch(self.current_epoch())
        return super().__iter__()
