"""The diffusion path's cross-attention reaches SDPA in a form its memory-efficient CUDA kernel accepts.

No CPU run can ask CUDA's kernel selector, so the arguments of every SDPA call of a bf16-autocast training step
are checked against that kernel's constraints as torch's aten/src/ATen/native/transformers/cuda/sdp_utils.cpp
(can_use_mem_efficient_attention) and attention.cpp (preprocess_mask) state them. The flash kernel takes no
explicit mask at all, and the path needs one (each slot sees the keys up to its own position), so the
memory-efficient kernel (or cuDNN) is what keeps the math kernel's per-head probabilities out of training.
"""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from l2d import L2DConfig, L2DModel
from l2d.model import diffusion_path
from tests.tiny import tiny_base


def efficient_kernel_refusals(q, k, v, attn_mask=None, enable_gqa=False, **_) -> list[str]:
    """Why CUDA's memory-efficient SDPA kernel would refuse these arguments (dense inputs, sm80 or newer)."""
    reasons = []
    if not all(x.dim() == 4 for x in (q, k, v)):
        reasons.append("q, k and v must be 4-D")
    if not q.dtype == k.dtype == v.dtype or q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        reasons.append("q, k, v must share one of float16, bfloat16, float32")
    if not q.shape[0] == k.shape[0] == v.shape[0]:
        reasons.append("same batch size")
    if not q.shape[1] == k.shape[1] == v.shape[1]:
        reasons.append("same number of heads (no grouped-query heads before pytorch#191085)")
    alignment = 8 if q.dtype in (torch.float16, torch.bfloat16) else 4  # minimum_gemm_alignment on sm80+
    if q.shape[-1] != k.shape[-1] or q.shape[-1] % alignment or v.shape[-1] % alignment:
        reasons.append(f"head dims equal for q and k and divisible by {alignment}")
    if any(x.stride(-1) != 1 for x in (q, k, v)):
        reasons.append("last-dim stride 1")
    if any(x.storage_offset() * x.element_size() % (alignment * x.element_size()) for x in (q, k, v)):
        reasons.append("storage offsets aligned")
    if attn_mask is not None:
        target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        if attn_mask.dim() != 4 or any(m not in (1, t) for m, t in zip(attn_mask.shape, target, strict=True)):
            reasons.append(f"mask {tuple(attn_mask.shape)} does not broadcast to {target}")
        if attn_mask.dtype != q.dtype:
            reasons.append("mask not an additive bias in q's dtype (converted anew at every call)")
        if attn_mask.requires_grad:
            reasons.append("mask requires grad")
        if attn_mask.stride(-1) != 1 or any(s % 8 for s in attn_mask.stride()[:-1]):
            reasons.append("mask strides not multiples of 8 (padded into a copy at every call)")
    return reasons


def path_sdpa_calls(monkeypatch):
    """The arguments of every SDPA call the diffusion path makes (the main path's own attention aside)."""
    calls = []

    def record(q, k, v, attn_mask=None, **options):
        # what the kernel receives: autocast casts q, k and v (and a mask of another float dtype) first
        cast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        calls.append(dict(**{name: x if cast is None else x.to(cast) for name, x in dict(q=q, k=k, v=v).items()},
                          attn_mask=attn_mask, **options))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **options)

    monkeypatch.setattr(diffusion_path, "F", SimpleNamespace(scaled_dot_product_attention=record))
    return calls


@pytest.mark.parametrize("checkpointing", [False, True])
def test_training_attention_meets_the_efficient_kernels_constraints(monkeypatch, checkpointing):
    """Llama-3.2-1B's grouping (4 query heads per key/value head, head dim 64) at a small width."""
    base = tiny_base(hidden_size=256, num_attention_heads=4, num_key_value_heads=1, head_dim=64)
    model = L2DModel(base, L2DConfig(dim=16, lora_rank=4, gradient_checkpointing=checkpointing)).train()
    ids = torch.randint(0, 256, (2, 21), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # left padding
    labels = ids.clone()
    labels[:, :9] = -100
    calls = path_sdpa_calls(monkeypatch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(ids, mask, labels=labels).loss
    loss.backward()
    assert len(calls) == len(model.diffusion.blocks) * (2 if checkpointing else 1)  # recomputed once each
    for call in calls:
        assert call["q"].dtype == torch.bfloat16
        assert efficient_kernel_refusals(**call) == []
    # one bias for every block and its recomputation, not a converted mask per call
    assert len({c["attn_mask"].data_ptr() for c in calls}) == 1


def test_the_constraints_refuse_the_grouped_boolean_form():
    """What the path passed before: grouped heads with enable_gqa and a boolean mask."""
    q, k = torch.randn(2, 4, 5, 64, dtype=torch.bfloat16), torch.randn(2, 1, 21, 64, dtype=torch.bfloat16)
    refusals = efficient_kernel_refusals(q, k, k, attn_mask=torch.ones(2, 1, 5, 21, dtype=torch.bool),
                                         enable_gqa=True)
    assert any("number of heads" in r for r in refusals) and any("additive bias" in r for r in refusals)
    assert any("strides" in r for r in refusals)  # 21 keys: rows not padded to 8
