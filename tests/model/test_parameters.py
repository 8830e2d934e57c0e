"""What trains and what stays frozen; trainable counts against the paper's (random/meta weights)."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from l2d import L2DConfig, L2DModel
from tests.tiny import tiny_base

LLAMA_32_1B = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                          num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True)
QWEN_25_15B = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                          num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True)


@pytest.mark.parametrize("config, paper_count", [(LLAMA_32_1B, 73e6), (QWEN_25_15B, 103e6)],
                         ids=["llama-3.2-1b", "qwen2.5-1.5b"])
def test_trainable_count_matches_paper(config, paper_count):
    with torch.device("meta"):
        model = L2DModel(AutoModelForCausalLM.from_config(config), L2DConfig())
    count = model.num_trainable_parameters()
    assert abs(count - paper_count) <= 0.05 * paper_count, count


def test_only_diffusion_parameters_train_and_base_is_bit_identical(family):
    base = tiny_base(family)
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4))
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    trainable = {id(p) for _, p in model.trainable_named_parameters()}
    for name, p in model.named_parameters():
        assert p.requires_grad == (id(p) in trainable), name
    assert all(not p.requires_grad for p in base.parameters())

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(0, 256, (2, 10))
    for _ in range(2):
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    moved = [n for n, p in model.trainable_named_parameters() if p.abs().sum() > 0]
    assert moved
    for name, p in base.named_parameters():
        assert torch.equal(p, before[name]), name


def test_full_path_trains_copies_not_the_base():
    base = tiny_base()
    lora = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4))
    full = L2DModel(base, L2DConfig(dim=16, full_path=True))
    names = dict(full.trainable_named_parameters())
    assert "blocks.0.projections.q_proj.weight" in names
    assert not any("lora" in n for n in names)
    layer = base.model.layers[0].self_attn.q_proj.weight
    assert torch.equal(names["blocks.0.projections.q_proj.weight"], layer)
    assert names["blocks.0.projections.q_proj.weight"] is not layer
    assert full.num_trainable_parameters() > lora.num_trainable_parameters()
