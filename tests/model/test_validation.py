"""Bad input: each a ValueError that names the field and what is allowed."""

import pytest
import torch

from l2d import L2DConfig, L2DModel
from tests.tiny import tiny_base


@pytest.fixture(scope="module")
def models():
    return (L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4)),
            L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4, num_classes=2)))


@pytest.mark.parametrize("field, value, message", [
    ("sigma", 0.0, "sigma must be > 0"), ("sigma", -1.0, "sigma must be > 0"),
    ("dim", 0, "dim must be >= 1"), ("timestep_sampling", "cosine", "timestep_sampling must be one of"),
    ("lora_rank", 0, "lora_rank must be >= 1"), ("class_dropout", 1.0, "class_dropout must be in"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        L2DConfig(**{field: value})


IDS = torch.randint(0, 256, (2, 5))


@pytest.mark.parametrize("kwargs, message", [
    (dict(levels=0), "levels must be an integer >= 1"),
    (dict(solver="heun"), r"solver must be one of \['euler', 'midpoint', 'rk4', 'adaptive_heun'"),
    (dict(guidance=2.0, class_labels=torch.tensor([1, 1])), "no guidance classes"),
    (dict(t_final=0.0), r"t_final must be in \(0, 1\]"),
    (dict(x1_estimate="mean"), "x1_estimate must be one of"),
    (dict(temperature=-1.0), "temperature must be >= 0"),
])
def test_generate_errors_without_classes(models, kwargs, message):
    with pytest.raises(ValueError, match=message):
        models[0].generate(IDS, max_new_tokens=2, **kwargs)


def test_guidance_errors(models):
    guided = models[1]
    with pytest.raises(ValueError, match="guidance needs class_labels"):
        guided.generate(IDS, max_new_tokens=2, guidance=2.0)
    with pytest.raises(ValueError, match=r"class_labels must be in 0..2 \(0 = null class\)"):
        guided.generate(IDS, max_new_tokens=2, class_labels=torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="class_labels must be in 0..2"):
        guided(IDS, labels=IDS, class_labels=torch.tensor([-1, 1]))
    with pytest.raises(ValueError, match="guidance must be None or a weight >= 1"):
        guided.generate(IDS, max_new_tokens=2, guidance=0.5, class_labels=torch.tensor([1, 1]))


def test_input_errors(models):
    model = models[0]
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 4\) must equal input_ids shape \(2, 5\)"):
        model.generate(IDS, torch.ones(2, 4, dtype=torch.long), max_new_tokens=2)
    with pytest.raises(ValueError, match="length >= 1"):
        model.generate(torch.zeros(2, 0, dtype=torch.long), max_new_tokens=2)
    mask = torch.ones_like(IDS)
    mask[1] = 0
    with pytest.raises(ValueError, match="empty prompt"):
        model.generate(IDS, mask, max_new_tokens=2)
    with pytest.raises(ValueError, match="every label is -100"):
        model(IDS, labels=torch.full_like(IDS, -100))
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 1\]"):
        model(IDS, labels=IDS, timesteps=1.5)


def test_unsupported_family_is_named():
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(ValueError, match=r"'gpt2' is not supported; supported families: \['llama', 'mistral'"):
        L2DModel(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)))
