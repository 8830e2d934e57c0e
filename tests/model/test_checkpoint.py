"""save_pretrained writes only the diffusion path; from_pretrained restores it exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from l2d import L2DConfig, L2DModel
from l2d.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from tests.tiny import tiny_base


def trained_model():
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, num_classes=2, class_names=["math", "code"]))
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def test_roundtrip_reproduces_logits_exactly(tmp_path):
    model = trained_model()
    model.save_pretrained(tmp_path / "ckpt")
    restored = L2DModel.from_pretrained(tmp_path / "ckpt", base=tiny_base())
    ids = torch.randint(0, 256, (2, 9))
    with torch.no_grad():
        expected = model(ids, timesteps=0.7, class_labels=torch.tensor([1, 2]))
        torch.manual_seed(0)
        a = model(ids, timesteps=0.7, class_labels=torch.tensor([1, 2])).logits
        torch.manual_seed(0)
        b = restored(ids, timesteps=0.7, class_labels=torch.tensor([1, 2])).logits
    assert expected.logits.shape == a.shape
    assert torch.equal(a, b)
    assert restored.config.class_names == ["math", "code"]


def test_only_diffusion_weights_are_written(tmp_path):
    model = trained_model()
    model.save_pretrained(tmp_path / "ckpt")
    tensors = load_file(str(tmp_path / "ckpt" / WEIGHTS_FILE))
    assert set(tensors) == {n for n, _ in model.trainable_named_parameters()}
    assert sum(t.numel() for t in tensors.values()) == model.num_trainable_parameters()
    meta = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert meta["config"]["sigma"] == 64.0 and meta["base_architecture"]["model_type"] == "llama"
    assert not [p for p in (tmp_path).iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_overwrite_is_atomic_and_complete(tmp_path):
    first, second = trained_model(), trained_model()
    first.save_pretrained(tmp_path / "ckpt")
    second.save_pretrained(tmp_path / "ckpt")
    restored = L2DModel.from_pretrained(tmp_path / "ckpt", base=tiny_base())
    pairs = zip(second.trainable_named_parameters(), restored.trainable_named_parameters(), strict=True)
    for (name, p), (_, q) in pairs:
        assert torch.equal(p, q), name


def test_wrong_base_is_refused(tmp_path):
    trained_model().save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match=r"was made for base model .*hidden_size"):
        L2DModel.from_pretrained(tmp_path / "ckpt", base=tiny_base(hidden_size=32))
    with pytest.raises(FileNotFoundError, match="not an L2D checkpoint directory"):
        L2DModel.from_pretrained(tmp_path, base=tiny_base())
