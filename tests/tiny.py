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
