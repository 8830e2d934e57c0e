"""The seeded epoch order split over data parallel processes: each reads its share once, a resumed process
continues its share where it stood, and Lightning keeps the sampler instead of wrapping it."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import RunningStage
from torch.utils.data import DataLoader

from l2d.data.order import EpochShuffleSampler
from l2d.data.sources import JsonlSource
from l2d.lightning.datamodule import L2DDataModule
from tests.data.conftest import NumberStream, write_jsonl


def test_one_process_reads_the_seeded_permutation():
    def permutation(seed: int) -> list[int]:
        return torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()

    assert list(EpochShuffleSampler(10, seed=3)) == permutation(3)  # the order before data parallel splits
    assert list(EpochShuffleSampler(10, seed=3, epoch=1)) == permutation(4)


@pytest.mark.parametrize("size", [11, 12])
def test_processes_split_the_epoch_and_a_skip_continues_each_share(size):
    order = torch.randperm(size, generator=torch.Generator().manual_seed(7)).tolist()
    shares = [list(EpochShuffleSampler(size, seed=7, replicas=2, rank=rank)) for rank in (0, 1)]
    padded = order + order[:len(order) % 2]  # torch's DistributedSampler pads with the order's head
    assert shares == [padded[0::2], padded[1::2]]
    for rank in (0, 1):
        resumed = EpochShuffleSampler(size, seed=7, replicas=2, rank=rank, skip=3)
        assert list(resumed) == shares[rank][3:]
        assert len(resumed) == len(shares[rank])  # Lightning counts the skipped batches as already read
        resumed.set_epoch(1)
        assert list(resumed) == list(EpochShuffleSampler(size, seed=7, epoch=1, replicas=2, rank=rank))


def test_lightning_keeps_the_sampler_under_ddp():
    """Lightning wraps any other sampler in its DistributedSamplerWrapper, which reads len() indices from
    __iter__ (IndexError on resume, when the sampler skips) and shuffles them again by another seed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(strategy="ddp", accelerator="cpu", devices=2, logger=False)
    connector = trainer._data_connector
    ours = DataLoader(range(10), sampler=EpochShuffleSampler(10, seed=0, replicas=2, rank=0))
    assert connector._prepare_dataloader(ours, shuffle=True, mode=RunningStage.TRAINING) is ours
    plain = DataLoader(range(10), sampler=torch.utils.data.SequentialSampler(range(10)))
    assert connector._prepare_dataloader(plain, shuffle=True, mode=RunningStage.TRAINING) is not plain


class ParallelTrainer:
    """What the data module reads of a trainer: its epoch and the strategy's split."""

    def __init__(self, rank: int, replicas: int = 2) -> None:
        self.current_epoch = 0
        self.distributed_sampler_kwargs = {"num_replicas": replicas, "rank": rank}


def rows(loader) -> list[int]:
    """A fingerprint of each example read, in order (its tokens' sum)."""
    return [row for batch in loader for row in batch["input_ids"].sum(1).tolist()]


@pytest.mark.parametrize("streamed", [False, True])
def test_resume_at_reaches_a_loader_handed_out_before_the_checkpoint_was_read(tmp_path, tokenizer, streamed):
    """trainer=fsdp restores the checkpoint after setting up, when configure_optimizers has already had the
    training loader built (to count the run's steps)."""
    def data(rank: int) -> L2DDataModule:
        if streamed:
            module = L2DDataModule(tokenizer, NumberStream(), max_length=64, micro_batch_size=2)
        else:
            rows = [{"prompt": f"q{i:02d}", "response": f"a{i:02d}"} for i in range(20)]
            module = L2DDataModule(tokenizer, JsonlSource(str(write_jsonl(tmp_path / "d.jsonl", rows))),
                                   micro_batch_size=2, val_size=0)
        module.setup()
        module.trainer = ParallelTrainer(rank)
        return module

    for rank in (0, 1):
        whole = rows(data(rank).train_dataloader())
        early = data(rank)
        loader = early.train_dataloader()
        early.resume_at(3)
        assert rows(loader) == whole[3 * 2:]
        assert early.skip_batches == 3
