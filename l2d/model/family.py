"""Where the pieces of an HF Llama-like model live, and the only code that knows transformers' layout.

The diffusion path calls the LM's own modules (q_proj, o_proj, the MLP projections, the norms,
the rotary embedding) and reads the main path's KV cache. Families differ only in attribute
names, so a family is a row of names; supporting a new Llama-like family is one table entry.
The cache layout and rotary helpers are the single place a transformers upgrade can touch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class Family:
    """Attribute paths inside a `*ForCausalLM` model (model-level) and inside one decoder layer."""

    decoder: str = "model"
    layers: str = "model.layers"
    embed_tokens: str = "model.embed_tokens"
    final_norm: str = "model.norm"
    lm_head: str = "lm_head"
    rotary: str = "model.rotary_emb"
    input_norm: str = "input_layernorm"
    post_attention_norm: str = "post_attention_layernorm"
    attention: str = "self_attn"
    q_proj: str = "q_proj"
    o_proj: str = "o_proj"
    mlp: str = "mlp"
    gate_proj: str = "gate_proj"
    up_proj: str = "up_proj"
    down_proj: str = "down_proj"
    act_fn: str = "act_fn"
    query_norm: str | None = None  # per-head RMSNorm on queries before RoPE (Qwen3)


LLAMA_LIKE = Family()

FAMILIES: dict[str, Family] = {
    "llama": LLAMA_LIKE,
    "mistral": LLAMA_LIKE,
    "qwen2": LLAMA_LIKE,
    "qwen3": replace(LLAMA_LIKE, query_norm="q_norm"),
}


def family_of(base: nn.Module) -> Family:
    model_type = getattr(getattr(base, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(
            f"base model type {model_type!r} is not supported; supported families: {sorted(FAMILIES)} "
            "(a new Llama-like family is one entry in l2d/model/family.py)")
    return FAMILIES[model_type]


def get(module: nn.Module, path: str) -> nn.Module:
    for name in path.split("."):
        module = getattr(module, name)
    return module


def cache_keyword(decoder: nn.Module) -> str:
    """The decoder's KV-cache argument: `cache` in current transformers, `past_key_values` before it
    (deprecated since the rename, removed in 5.40)."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def layer_kv(cache, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-RoPE keys and values of one layer: (B, kv_heads, T, head_dim) each."""
    if hasattr(cache, "layers"):  # transformers >= 4.56
        entry = cache.layers[layer]
        return entry.keys, entry.values
    return cache.key_cache[layer], cache.value_cache[layer]


def rotary_cos_sin(rotary: nn.Module, like: torch.Tensor, position_ids: torch.Tensor):
    """cos, sin of shape (B, Q, head_dim) from the LM's own rotary module (handles rope scaling)."""
    return rotary(like, position_ids)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on x of shape (B, heads, Q, head_dim) with the half-split convention of HF Llama."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def new_cache(base: nn.Module, max_length: int | None = None):
    """An empty KV cache laid out for this model (per-layer types such as sliding windows): dynamic,
    or, given `max_length`, static — preallocated, so every decode step sees the same shapes and
    addresses (what torch.compile and CUDA graphs need)."""
    import transformers
    from transformers import DynamicCache, StaticCache

    if max_length is None:
        return DynamicCache(config=base.config)
    if int(transformers.__version__.split(".")[0]) < 5:
        raise ValueError(f"static_cache needs transformers >= 5 (its StaticCache tracks its own length); "
                         f"installed: {transformers.__version__}")
    return StaticCache(config=base.config, max_cache_len=max_length)


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, as transformers' generate() computes them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def reorder_cache(cache, rows: torch.Tensor) -> None:
    """Keep (or repeat) batch rows `rows` of every layer's keys and values (beam search). A static cache whose
    row count stays is rewritten in place: its tensors keep the addresses compiled graphs were recorded with."""
    if hasattr(cache, "layers"):
        for entry in cache.layers:
            if is_static(entry) and len(rows) == entry.keys.shape[0]:
                entry.keys.copy_(entry.keys[rows])
                entry.values.copy_(entry.values[rows])
            else:
                entry.keys, entry.values = entry.keys[rows], entry.values[rows]
    else:
        cache.reorder_cache(rows)


def is_static(entry) -> bool:
    from transformers.cache_utils import StaticLayer

    return isinstance(entry, StaticLayer)


def copy_rows(source, target, rows: torch.Tensor) -> None:
    """Fill the static cache `target` (allocated for len(rows) rows, same length) with rows `rows` of the static
    cache `source`: a beam that widens moves into a cache of its own width instead of into fresh tensors."""
    for entry, into in zip(source.layers, target.layers, strict=True):
        keys, values = entry.keys[rows], entry.values[rows]
        if not into.is_initialized:
            into.lazy_initialization(keys, values)
        into.keys.copy_(keys)
        into.values.copy_(values)
        into.cumulative_length.copy_(entry.cumulative_length)
        if hasattr(entry, "cumulative_length_int"):  # sliding-window layers also count in a Python int
            into.cumulative_length_int = entry.cumulative_length_int
