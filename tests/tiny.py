"""Tiny random models of each supported family (a few layers, width 64), built in seconds."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

TINY = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512)
FAMILY_CONFIGS = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig, "qwen3": Qwen3Config}


def tiny_base(family: str = "llama", seed: int = 0, **overrides):
    """A random tiny LM; initializer_range 0.2 lets its frozen head reach low losses (a 0.02 head caps
    cross-entropy near 4 whatever the diffusion path does)."""
    torch.manual_seed(seed)
    config = FAMILY_CONFIGS[family](**{**TINY, "initializer_range": 0.2, **overrides})
    return AutoModelForCausalLM.from_config(config).eval()


def tiny_l2d_far_from_lm(**config):
    """A tiny L2D model whose diffusion path is random: the zero start plus noise, far from the LM, its velocity
    differing from row to row (decoding tests need a path that changes tokens)."""
    from l2d import L2DConfig, L2DModel

    torch.manual_seed(0)
    model = L2DModel(tiny_base(), L2DConfig(**{"dim": 16, "lora_rank": 4, "start": "zero", **config}))
    with torch.no_grad():
        for _, p in model.trainable_named_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def decode_prompts(device: str = "cpu"):
    """Three random prompts of 7 tokens, the first left-padded by 2."""
    ids = torch.randint(0, 256, (3, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :2] = 0
    return ids.to(device), mask.to(device)


def fit_at_t1(model, ids, parameters, steps: int, lr: float = 3e-3) -> None:
    """Train `parameters` of an L2D model on `ids` with x_t always the clean token (t = 1): the path only has to
    learn to read x_t. Decay and clipping as in real training: constant-lr Adam spikes once the loss nears 0,
    and where the spike lands depends on the machine's float rounding."""
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.01, total_iters=steps)
    for _ in range(steps):
        loss = model(ids, labels=ids, timesteps=1.0).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
