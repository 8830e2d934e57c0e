"""trainer.precision auto (bf16-mixed where the CPU has bfloat16 matrix units), the frozen base stored in bfloat16
under bf16-mixed, and the fused AdamW of conf/train.yaml."""

import logging

import pytest
import torch

from l2d import config as l2d_config
from l2d.train import train
from tests.compose import compose_config
from tests.training.conftest import logged


def cpu_with(monkeypatch, amx: bool, avx512_bf16: bool, cuda: bool = False) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(l2d_config, "_announced", set())


@pytest.mark.parametrize("amx, avx512_bf16, cuda, accelerator, expected", [
    (True, True, False, "auto", "bf16-mixed"),    # Intel Sapphire Rapids and later
    (False, True, False, "auto", "bf16-mixed"),   # AMD Zen 4 and later
    (False, False, False, "auto", "32-true"),     # bfloat16 only emulated
    (False, False, True, "auto", "bf16-mixed"),   # a GPU
    (False, False, True, "cpu", "32-true"),       # trainer=cpu on a GPU machine: the CPU's own rule
])
def test_precision_auto_follows_the_hardware_and_says_why(amx, avx512_bf16, cuda, accelerator, expected,
                                                          monkeypatch, caplog):
    cpu_with(monkeypatch, amx, avx512_bf16, cuda)
    with caplog.at_level(logging.INFO, logger="l2d.config"):
        cfg = compose_config("train", [f"trainer.accelerator={accelerator}"])
        assert cfg.trainer.precision == expected
        assert cfg.trainer.precision == expected  # read twice, logged once
    lines = [r.getMessage() for r in caplog.records if "trainer.precision auto" in r.getMessage()]
    assert len(lines) == 1 and f"auto: {expected} (" in lines[0]
    assert ("AMX" if amx else "AVX512-BF16" if avx512_bf16 else "without") in lines[0] or cuda


@pytest.mark.parametrize("explicit", ["32-true", "bf16-mixed"])
def test_an_explicit_precision_wins(explicit, monkeypatch):
    cpu_with(monkeypatch, amx=explicit == "32-true", avx512_bf16=explicit == "32-true")
    assert compose_config("train", [f"trainer.precision={explicit}"]).trainer.precision == explicit


@pytest.mark.parametrize("precision, frozen", [("32-true", torch.float32), ("bf16-mixed", torch.bfloat16)])
def test_bf16_mixed_stores_the_frozen_base_in_bfloat16_and_trains_float32(precision, frozen, tiny_train, tmp_path,
                                                                          monkeypatch):
    from l2d.lightning.module import TrainingModule

    seen = {}
    fit_start = TrainingModule.on_fit_start

    def record(module):
        fit_start(module)
        seen["frozen"] = {p.dtype for p in module.network.parameters() if not p.requires_grad}
        seen["trainable"] = {p.dtype for p in module.network.parameters() if p.requires_grad}

    monkeypatch.setattr(TrainingModule, "on_fit_start", record)
    metrics = train(tiny_train(f"trainer.precision={precision}", "trainer.max_steps=3"))
    assert seen == {"frozen": {frozen}, "trainable": {torch.float32}}
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if "loss" in k)


def test_fused_adamw_trains_as_the_for_loop_does(tiny_train, tmp_path):
    """conf/train.yaml's fused AdamW: the same losses as the for-loop implementation, within float tolerance."""
    cfg = compose_config("train", ["optimizer.lr=1e-3"])
    assert cfg.optimizer.fused is True
    losses = {}
    for fused in (True, False):
        out = tmp_path / str(fused)
        train(tiny_train("trainer.precision=32-true", f"optimizer.fused={str(fused).lower()}", "lr=3e-3",
                         output_dir=out))
        losses[fused] = logged(out / "metrics.csv", "train/loss")
    assert len(losses[True]) == 10 and losses[True].keys() == losses[False].keys()
    for step in losses[True]:
        assert losses[True][step] == pytest.approx(losses[False][step], rel=1e-4, abs=1e-5)
    assert losses[True][9] != losses[True][0]  # the steps did move the path
