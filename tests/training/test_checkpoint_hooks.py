"""The training module's checkpoint hooks against checkpoints in the shape each strategy's loader hands to
on_load_checkpoint (read in Lightning 2.6): under DDP and on one device the whole file; under trainer=fsdp
(ModelParallelStrategy's `_load_checkpoint`, as FSDPStrategy's full-checkpoint load) the file without
"state_dict", which the loader popped and loaded itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.lightning.module import TrainingModule
from l2d.validation import InputError
from tests.tiny import tiny_base


class Recorder:
    """A data module that records where the resumed epoch starts."""

    def __init__(self) -> None:
        self.resumed_at = None

    def resume_at(self, batches: int) -> None:
        self.resumed_at = batches


def module(world_size: int = 2) -> TrainingModule:
    torch.manual_seed(0)
    network = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4))
    training = TrainingModule(network, optimizer=torch.optim.AdamW)
    training._trainer = SimpleNamespace(world_size=world_size, datamodule=Recorder())
    return training


def saved(training: TrainingModule, ready: int = 6, rank_zero: bool = True) -> dict:
    """The checkpoint as our on_save_checkpoint leaves it; on ranks other than 0 the strategy's gathered
    state dict is empty (FSDP gathers to rank 0 only)."""
    checkpoint = {"state_dict": training.state_dict() if rank_zero else {}, "global_step": 3,
                  "optimizer_states": [{}], "loops": {"fit_loop": {"epoch_loop.batch_progress": {
                      "current": {"ready": ready}}}}}
    training.on_save_checkpoint(checkpoint)
    return checkpoint


def loaded_by(strategy: str, checkpoint: dict) -> dict:
    return {k: v for k, v in checkpoint.items() if k != "state_dict"} if strategy == "fsdp" else dict(checkpoint)


def test_the_file_keeps_the_trainable_parameters_and_names_them():
    training = module()
    checkpoint = saved(training)
    trainable = {name for name, p in training.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trainable and checkpoint["trainable"] == sorted(trainable)
    assert not any(".base." in name or name.startswith("network.base") for name in checkpoint["state_dict"])
    assert checkpoint["processes"] == 2
    other_rank = saved(module(), rank_zero=False)
    assert other_rank["state_dict"] == {} and other_rank["trainable"] == checkpoint["trainable"]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_resume_continues_the_epoch_where_the_checkpoint_stood(strategy):
    checkpoint = loaded_by(strategy, saved(module(), ready=6))
    resumed = module()
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.trainer.datamodule.resumed_at == 6  # each process's own micro-batches, not x world size


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_checkpoint_that_lacks_trainable_parameters_is_refused(strategy):
    checkpoint = saved(module())
    lora_a = sorted(name for name in checkpoint["trainable"] if "lora_A" in name)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k not in lora_a}
    checkpoint["trainable"] = [name for name in checkpoint["trainable"] if name not in lora_a]
    with pytest.raises(ValueError, match=rf"lacks {len(lora_a)} trainable parameters of this run"):
        module().on_load_checkpoint(loaded_by(strategy, checkpoint))


def test_weights_loaded_by_the_strategy_from_an_unnamed_checkpoint_are_refused():
    checkpoint = loaded_by("fsdp", saved(module()))
    del checkpoint["trainable"]  # a file written before the names were kept
    with pytest.raises(ValueError, match="does not name them .* resume it under trainer=ddp or on one device"):
        module().on_load_checkpoint(checkpoint)


def test_mid_epoch_the_number_of_processes_cannot_change():
    with pytest.raises(InputError, match=r"split over 2 processes: resume it on 2 .*not 4$"):
        module(world_size=4).on_load_checkpoint(saved(module(world_size=2), ready=6))
    at_epoch_start = module(world_size=4)
    at_epoch_start.on_load_checkpoint(saved(module(world_size=2), ready=0))
    assert at_epoch_start.trainer.datamodule.resumed_at == 0
