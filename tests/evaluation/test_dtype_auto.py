"""evaluate's dtype auto: bfloat16 for batched decoding on CPUs with bfloat16 matrix units, float32 at batch 1."""

import logging

import pytest
import torch
from omegaconf import OmegaConf

from l2d import config as l2d_config
from l2d.evaluate import resolve_device


@pytest.mark.parametrize("amx, avx512_bf16, batch_size, expected", [
    (True, True, 16, torch.bfloat16),     # AMX, batched
    (False, True, 16, torch.bfloat16),    # AVX512-BF16, batched
    (False, True, 2, torch.bfloat16),
    (True, True, 1, torch.float32),       # batch 1: bfloat16 was slower there on an AMX CPU
    (False, True, 1, torch.float32),
    (False, False, 16, torch.float32),    # bfloat16 only emulated
])
def test_dtype_auto_on_cpu(amx, avx512_bf16, batch_size, expected, monkeypatch, caplog):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(l2d_config, "_announced", set())
    with caplog.at_level(logging.INFO, logger="l2d.config"):
        device, dtype = resolve_device(OmegaConf.create({"device": "cpu", "dtype": "auto", "batch_size": batch_size}))
    assert (device.type, dtype) == ("cpu", expected)
    assert any(f"dtype auto: {str(expected).removeprefix('torch.')} (" in r.getMessage() for r in caplog.records)
    # an explicit dtype always wins; no batch size (lm_eval, inspect) counts as batch 1
    for explicit in ("float32", "bfloat16"):
        chosen = resolve_device(OmegaConf.create({"device": "cpu", "dtype": explicit, "batch_size": batch_size}))[1]
        assert chosen == getattr(torch, explicit)
    assert resolve_device(OmegaConf.create({"device": "cpu", "dtype": "auto"}))[1] == torch.float32
