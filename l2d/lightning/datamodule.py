"""L2DDataModule: instruction data in, loss-masked, padded micro-batches out, in a resumable order."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from l2d.data.batching import ChatEncoder, Encoded, PadCollator, pad_token_id
from l2d.data.chat import IGNORE_INDEX
from l2d.data.classes import class_ids, resolve_class_names
from l2d.data.example import Example
from l2d.data.invalid import InvalidRecords
from l2d.data.order import EpochShuffleSampler, hold_out
from l2d.data.sources import Source, StreamedSource
from l2d.data.streaming import StreamedBatches, StreamedLoader, round_robin

log = logging.getLogger(__name__)


@dataclass
class DataStats:
    """What setup() read. For streamed training data only the validation part is known up front, so
    the training counts are None and `dropped_too_long` counts validation only."""

    examples: int | None  # training examples kept
    val_examples: int
    dropped_too_long: int
    skipped_invalid: int
    tokens: int | None  # training tokens
    supervised_tokens: int | None  # training tokens with a label


def streams_in_turn(sources: Sequence[StreamedSource], epoch: int, invalid: InvalidRecords) -> Iterator[Example]:
    """All streamed sources' examples of one epoch, one source after another in turn."""
    return round_robin([source.stream(epoch, invalid) for source in sources])


class L2DDataModule(LightningDataModule):
    """Instruction data for L2D: chats from `sources`, tokenised with the base model's chat template.

    Batches: input_ids, attention_mask, labels (B, T) long, right-padded per batch, labels -100 on
    padding and non-assistant tokens; class_labels (B,) long, 0 for unlabeled examples.

    sources: one source or a list; all in memory (`Source`) or all streamed (`StreamedSource`).
    class_names: fixes the class ids (1 + index); None takes the sorted names the sources produce.
    val_size: held out of in-memory sources that have no validation split of their own
        (a count, or a fraction when a float below 1), chosen by `seed`.
    skip_batches: the number of micro-batches of the current epoch that a resumed run has already trained on in
        each process (the checkpoint's `loops.fit_loop["epoch_loop.batch_progress"]["current"]["ready"]`); they are
        skipped. Set it with `resume_at`, which also reaches a loader handed out before the checkpoint was read.
    Under data parallel training each process reads its share of the in-memory epoch (EpochShuffleSampler);
    streamed data is read whole by every process, each with its own noise.
    """

    def __init__(self, tokenizer: Any, sources: Source | StreamedSource | Sequence[Source | StreamedSource],
                 class_names: Sequence[str] | None = None, max_length: int = 2048, micro_batch_size: int = 8,
                 val_size: int | float = 0.05, num_workers: int = 0, seed: int = 0, skip_invalid: bool = False) -> None:
        super().__init__()
        if max_length < 1 or micro_batch_size < 1:
            raise ValueError(f"max_length and micro_batch_size must be >= 1, got {max_length}, {micro_batch_size}")
        self.sources = [sources] if isinstance(sources, (Source, StreamedSource)) else list(sources)
        self.streaming = all(isinstance(source, StreamedSource) for source in self.sources)
        if not self.sources or not (self.streaming or all(isinstance(s, Source) for s in self.sources)):
            raise ValueError("sources must be one or more sources, all in memory or all streamed (not a mix)")
        self.tokenizer = tokenizer
        self.fixed_class_names = None if class_names is None else list(class_names)
        self.max_length = max_length
        self.micro_batch_size = micro_batch_size
        self.val_size = val_size
        self.num_workers = num_workers
        self.seed = seed
        self.skip_invalid = skip_invalid
        self.skip_batches = 0
        self.handed_out: EpochShuffleSampler | StreamedBatches | None = None  # the last train loader's order
        self.collate = PadCollator(pad_token_id(tokenizer))
        self.class_names: list[str] = []
        self.stats: DataStats | None = None

    def read(self, invalid: InvalidRecords) -> tuple[list[Example] | None, list[Example], set[str | None]]:
        """(training examples or None when streamed, validation examples, class names they can have)."""
        if self.streaming:
            validation = [example for source in self.sources for example in source.validation(invalid)]
            declared = {name for source in self.sources for name in source.class_names}
            return None, validation, declared | {example.class_name for example in validation}
        train, validation, undivided = [], [], []
        for loaded in (source.load(invalid) for source in self.sources):
            if loaded.validation is None:
                undivided += loaded.train
            else:
                train += loaded.train
                validation += loaded.validation
        if undivided:
            rest, heldout = hold_out(undivided, self.val_size, self.seed)
            train, validation = train + rest, validation + heldout
        return train, validation, {example.class_name for example in train + validation}

    def setup(self, stage: str | None = None) -> None:
        """Read, split and tokenise once (later calls do nothing); raises if no training data is left."""
        if self.stats is not None:
            return
        invalid = InvalidRecords(self.skip_invalid)
        train, validation, names = self.read(invalid)
        self.class_names = resolve_class_names(names, self.fixed_class_names)
        self.encoder = ChatEncoder(self.tokenizer, self.max_length, class_ids(self.class_names))
        self.val_set = self.encode(validation)
        self.train_set = None if train is None else self.encode(train)
        dropped = len(validation) - len(self.val_set) + (0 if train is None else len(train) - len(self.train_set))
        if train is not None and not self.train_set:
            raise ValueError(f"no training examples left after filtering: {dropped} longer than "
                             f"max_length={self.max_length}, {invalid.count} invalid skipped, "
                             f"{len(validation)} held for validation")
        self.stats = DataStats(
            examples=None if train is None else len(self.train_set),
            val_examples=len(self.val_set),
            dropped_too_long=dropped,
            skipped_invalid=invalid.count,
            tokens=None if train is None else sum(len(item["input_ids"]) for item in self.train_set),
            supervised_tokens=None if train is None else sum(
                sum(label != IGNORE_INDEX for label in item["labels"]) for item in self.train_set),
        )
        log.info("data: %s; classes %s", asdict(self.stats), self.class_names)

    def encode(self, examples: list[Example]) -> list[Encoded]:
        """Tokenised examples; those over max_length are dropped (counted by the caller)."""
        return [item for item in map(self.encoder, examples) if item is not None]

    def current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """This epoch's micro-batches in their seeded order, minus the first `skip_batches`."""
        if self.streaming:
            self.handed_out = StreamedBatches(partial(streams_in_turn, self.sources), self.encoder, self.collate,
                                              self.micro_batch_size, self.current_epoch(), self.skip_batches,
                                              self.skip_invalid)
            return StreamedLoader(self.handed_out, self.current_epoch, self.num_workers)
        parallel = getattr(self.trainer, "distributed_sampler_kwargs", None) or {}
        self.handed_out = EpochShuffleSampler(len(self.train_set), self.seed, self.current_epoch(),
                                              skip=self.skip_batches * self.micro_batch_size,
                                              replicas=parallel.get("num_replicas", 1), rank=parallel.get("rank", 0))
        return DataLoader(self.train_set, batch_size=self.micro_batch_size, sampler=self.handed_out,
                          collate_fn=self.collate, num_workers=self.num_workers)

    def resume_at(self, batches: int) -> None:
        """Skip the first `batches` micro-batches of the current epoch in each process, in the loader already
        handed out too: a strategy that reads the checkpoint after setting up (trainer=fsdp) has built one to
        count the run's steps before (a loader of another epoch is replaced before it is read)."""
        self.skip_batches = batches
        if isinstance(self.handed_out, EpochShuffleSampler):
            self.handed_out.skip = batches * self.micro_batch_size
        elif isinstance(self.handed_out, StreamedBatches):
            self.handed_out.skip_batches = batches

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.micro_batch_size, shuffle=False,
                          collate_fn=self.collate, num_workers=self.num_workers)

    def state_dict(self) -> dict[str, Any]:
        return {"class_names": self.class_names}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuses to resume on data whose class ids differ from the checkpoint's."""
        self.setup()
        if state_dict.get("class_names") != self.class_names:
            raise ValueError(f"the checkpoint was trained with classes {state_dict.get('class_names')}, "
                             f"this data gives {self.class_names}")
