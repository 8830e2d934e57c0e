"""Which SDPA kernel runs the diffusion path's cross-attention at the Llama-3.2-1B training shape, on a CUDA device.

    python3 experiments/bench/attention_probe.py [--out FILE.json]

Batch 4, 32 query heads on 8 key/value heads, head dim 64, 2,048 slots over 2,048 keys, bfloat16, every slot
supervised, the first rows left-padded. Two forms of the same attention:
- `grouped, bool mask`: what the path passed before (32 query heads, enable_gqa, a boolean mask (B, 1, Q, T));
- `folded, bf16 bias`: what it passes now (query heads folded per key/value head: q (B, 8, 4 x Q, 64), the
  additive bias of l2d.model.diffusion_path.AttentionBias).
Each under cuDNN, memory-efficient, flash, math, and the default choice: forward and backward, whether it ran (or
the kernel's refusal), milliseconds (median of 5 after 2) and the peak memory the call added. Prints one JSON line
per run and a table; a CPU machine only checks that the two forms agree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from l2d.model.diffusion_path import AttentionBias

BACKENDS = {"cudnn": [SDPBackend.CUDNN_ATTENTION], "efficient": [SDPBackend.EFFICIENT_ATTENTION],
            "flash": [SDPBackend.FLASH_ATTENTION], "math": [SDPBackend.MATH], "default": None}


def inputs(device, batch=4, heads=32, kv_heads=8, slots=2048, keys=2048, head_dim=64):
    """q, k, v and the path's key mask as the training step builds it (left padding, causal by position)."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    q = torch.randn(batch, heads, slots, head_dim, generator=generator).to(device, torch.bfloat16)
    k, v = (torch.randn(batch, kv_heads, keys, head_dim, generator=generator).to(device, torch.bfloat16)
            for _ in range(2))
    key_mask = torch.ones(batch, keys, dtype=torch.bool)
    key_mask[1, :100], key_mask[2, :700] = False, False
    index = torch.arange(keys)
    query_index = index[:slots].expand(batch, slots)
    own = index == query_index.unsqueeze(-1)
    mask = (index <= query_index.unsqueeze(-1)) & (key_mask.unsqueeze(1) | own)
    return q, k, v, mask.unsqueeze(1).to(device)


def forms(q, k, v, mask):
    """name -> (call(q) returning (B, heads, Q, head_dim), what it passes SDPA)."""
    batch, heads, slots, head_dim = q.shape
    groups = heads // k.shape[1]
    bias = AttentionBias(mask)

    def grouped(query):
        return F.scaled_dot_product_attention(query, k, v, attn_mask=mask, enable_gqa=True)

    def folded(query):
        folded_q = query.reshape(batch, k.shape[1], groups * slots, head_dim)
        out = F.scaled_dot_product_attention(folded_q, k, v, attn_mask=bias(folded_q, groups))
        return out.view(batch, heads, slots, head_dim)

    return {"grouped, bool mask": grouped, "folded, bf16 bias": folded}


def run(call, q, backend, device) -> dict:
    query = q.detach().requires_grad_()
    grad = torch.randn_like(q)

    def step():
        out = call(query)
        out.backward(grad)
        query.grad = None

    with warnings.catch_warnings(record=True) as reasons:  # a kernel that refuses says why in a warning
        warnings.simplefilter("always")
        try:
            return measure(step, backend, device)
        except RuntimeError as error:
            said = [line for line in (str(w.message).strip().splitlines()[0] for w in reasons)
                    if not line.endswith("because:")]
            return {"ran": False, "refusal": " | ".join(said[:4] or [str(error).strip().splitlines()[0]])[:500]}


def measure(step, backend, device) -> dict:
    with sdpa_kernel(BACKENDS[backend]) if BACKENDS[backend] else nullcontext():
        for _ in range(2):
            step()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        times = []
        for _ in range(5):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        return {"ran": True, "ms": statistics.median(times),
                "peak_gib": (torch.cuda.max_memory_allocated(device) - base) / 2**30}


def chosen(q, k, v, mask, form: str) -> str:
    """The kernel SDPA's own selector picks for the form's arguments (no kernel is disabled)."""
    try:
        if form.startswith("grouped"):
            choice = torch._fused_sdp_choice(q, k, v, mask, 0.0, False, enable_gqa=True)
        else:
            groups = q.shape[1] // k.shape[1]
            folded = q.reshape(q.shape[0], k.shape[1], groups * q.shape[2], q.shape[3])
            choice = torch._fused_sdp_choice(folded, k, v, AttentionBias(mask)(folded, groups), 0.0, False)
        return SDPBackend(choice).name
    except Exception as error:  # an internal API: say so rather than fail the probe
        return f"unknown ({type(error).__name__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda,
                      "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
                      "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}), flush=True)
    q, k, v, mask = inputs(device, **({} if device.type == "cuda" else dict(slots=64, keys=64)))
    calls = forms(q, k, v, mask)
    with torch.no_grad():
        outputs = {name: call(q).float() for name, call in calls.items()}
    agree = (outputs["grouped, bool mask"] - outputs["folded, bf16 bias"]).abs().max().item()
    print(json.dumps({"max |difference| between the forms": agree}), flush=True)
    if device.type != "cuda":
        return
    rows = []
    for name, call in calls.items():
        for backend in BACKENDS:
            row = {"form": name, "backend": backend, **run(call, q, backend, device)}
            if backend == "default":
                row["default picks"] = chosen(q, k, v, mask, name)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\n{'form':<20} {'backend':<10} {'ran':<5} {'ms':>8} {'peak GiB':>9}  note")
    for r in rows:
        print(f"{r['form']:<20} {r['backend']:<10} {str(r['ran']):<5} {r.get('ms', float('nan')):>8.2f} "
              f"{r.get('peak_gib', float('nan')):>9.2f}  {r.get('default picks', r.get('refusal', ''))}")


if __name__ == "__main__":
    main()
