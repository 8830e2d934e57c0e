"""The two kinds of source a data module reads: in memory (map-style) and streamed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from l2d.data.example import Example
from l2d.data.invalid import InvalidRecords


@dataclass
class Loaded:
    """A map-style source's examples; `validation` is None when the data module should hold some out."""

    train: list[Example]
    validation: list[Example] | None = None


class Source(ABC):
    """A source small enough to hold in memory; the data module shuffles and splits it."""

    @abstractmethod
    def load(self, invalid: InvalidRecords) -> Loaded:
        """Read every example once."""


class StreamedSource(ABC):
    """A source too large to hold: training examples are read lazily, in a seeded order per epoch."""

    @property
    @abstractmethod
    def class_names(self) -> tuple[str, ...]:
        """Every class name the stream can produce (the data module cannot see the stream up front)."""

    @abstractmethod
    def stream(self, epoch: int, invalid: InvalidRecords) -> Iterator[Example]:
        """Training examples of one epoch, in an order fixed by the source's seed and `epoch`."""

    @abstractmethod
    def validation(self, invalid: InvalidRecords) -> list[Example]:
        """A fixed, bounded validation set."""
