"""A tiny L2D export shared by the lm-eval and inspect tests."""

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.model.tiny import tiny_model


@pytest.fixture(scope="session")
def export(tmp_path_factory):
    """A tiny L2D export whose diffusion path matters (random weights, not the zero start's w_d = 0)."""
    torch.manual_seed(0)
    base, _ = tiny_model()
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4))
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp("export") / "export"
    model.save_pretrained(path)
    return path
