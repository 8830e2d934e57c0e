"""Per-slot memory of an L2D-LoRA training step, measured on CPU, and the GPU memory it implies (an estimate).

    python experiments/bench/memory.py [--out experiments/bench/memory.json]

A training step under bf16 autocast with float32 master weights (l2d.train's bf16-mixed), on random weights of
Llama-3.2-1B's and Llama-3.1-8B's architecture at 1 and 2 of their layers, every position supervised. A dispatch
mode counts the bytes of every tensor storage the step allocates while it is alive (weights excluded), so the
figures are what a device allocator would have to hold, not the host's RSS. Differences between runs isolate:

- per slot and layer, the diffusion path's activations (2 layers minus 1, at a 1,024-token vocabulary),
  with gradient checkpointing off and on;
- per slot and vocabulary entry, the loss's vocabulary-sized tensors: what is allocated from the LM head's forward to
  the end of its backward, at 256 and 512 slots (1 layer), with the loss's float32 chunk made small: the chunk is a
  bounded term of its own (l2d.model.loss); what does not grow with slots is the bf16 copy of the head's weight;
- per token and layer, the main path's KV cache, which the step keeps to its end.

`docs/performance.md` turns them into the table for sequence 2048; `estimate()` here is that arithmetic. The
attention bias (groups x slots x keys, bf16) is counted apart, since it grows with slots times keys.
"""

from __future__ import annotations

import argparse
import json
import sys
import weakref
from pathlib import Path

import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from l2d import L2DConfig, L2DModel  # noqa: E402
from l2d.model.family import get  # noqa: E402
from l2d.model.loading import random_model  # noqa: E402

try:
    from l2d.model import loss as chunked_loss
    CHUNK_BYTES = 4 * chunked_loss.CHUNK_ELEMENTS
except ImportError:  # a tree from before the chunked loss (to measure what it replaced)
    chunked_loss, CHUNK_BYTES = None, 0

LLAMA1B = yaml.safe_load((ROOT / "conf/model/llama1b_random.yaml").read_text())["architecture"]
LLAMA8B = {**LLAMA1B, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": False,
           "rope_scaling": {**LLAMA1B["rope_scaling"], "factor": 8.0}}  # Llama-3.1-8B
SMALL_VOCABULARY = 1024
GiB = 2**30


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensor storages allocated under this mode and still alive; `peak` is their maximum."""

    def __init__(self, ignore=()):
        super().__init__()
        self.ignored = {id(t.untyped_storage()) for t in ignore}  # ids stay valid: a storage keeps its object
        self.tracked: dict[int, weakref.ref] = {}
        self.live = self.peak = self.phase_peak = 0

    def mark(self) -> int:
        """Start a phase: `phase_peak` is the maximum from now on. Returns the bytes alive now."""
        self.phase_peak = self.live
        return self.live

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.track(tensor.untyped_storage())
        return out

    def track(self, storage) -> None:
        key = id(storage)
        if key in self.ignored or key in self.tracked:
            return
        size = storage.nbytes()
        self.tracked[key] = weakref.ref(storage, lambda _, key=key, size=size: self.free(key, size))
        self.live += size
        self.peak = max(self.peak, self.live)
        self.phase_peak = max(self.phase_peak, self.live)

    def free(self, key: int, size: int) -> None:
        self.tracked.pop(key, None)
        self.live -= size


def step_bytes(architecture: dict, layers: int, vocabulary: int | None, slots: int, checkpointing: bool,
               batch: int = 1) -> dict:
    """Peak bytes of one training step (forward, loss, backward), the bytes alive after the main path, and what the
    LM head's phase adds at its peak: from the head's forward to the end of its backward (the vocabulary-sized
    logits, the loss's tensors and gradients)."""
    base, _ = random_model({**architecture, "num_hidden_layers": layers,
                            **({"vocab_size": vocabulary} if vocabulary else {})}, dtype=torch.float32)
    model = L2DModel(base, L2DConfig(gradient_checkpointing=checkpointing)).train()
    ids = torch.randint(0, base.config.vocab_size, (batch, slots + 1), generator=torch.Generator().manual_seed(0))
    weights = [*model.parameters(), *model.buffers()]
    counter, head_phase = LiveBytes(ignore=weights), {}
    head = get(base, model.family.lm_head)
    hooks = [head.register_forward_pre_hook(lambda *_: head_phase.update(start=counter.mark())),
             head.register_full_backward_hook(lambda *_: head_phase.update(peak=counter.phase_peak))]
    with counter, torch.autocast("cpu", dtype=torch.bfloat16):
        slots_ = model.supervised_slots(ids, None, ids, None)
        after_main = counter.live
        t = torch.rand(slots_.index.shape, generator=torch.Generator().manual_seed(1))
        out = model.diffusion_pass(slots_, t, supervised=True)
        loss = out.loss
        loss.backward()
    del out, loss, slots_
    for hook in hooks:
        hook.remove()
    return {"peak": counter.peak, "after_main_path": after_main, "head_phase": head_phase["peak"] - head_phase["start"],
            "slots": batch * slots, "tokens": batch * (slots + 1)}


def measure() -> dict:
    if chunked_loss is not None:  # the chunk's float32 temporary, bounded, is counted apart from what grows with slots
        chunked_loss.CHUNK_ELEMENTS = 2**16
    """The per-layer, per-slot and per-token figures of each architecture (bytes), from 1 and 2 layers at 256 and
    512 slots: what grows with layers and slots apart from what each layer costs once (autocast's bf16 copies of
    the frozen weights, saved for the backward pass)."""
    figures = {}
    for name, architecture in (("llama1b", LLAMA1B), ("llama8b", LLAMA8B)):
        row, few, many = {}, 256, 512
        for checkpointing in (False, True):
            key = "checkpointing" if checkpointing else "no_checkpointing"
            runs = {(layers, slots): step_bytes(architecture, layers, SMALL_VOCABULARY, slots, checkpointing)
                    for layers in (1, 2) for slots in (few, many)}
            layer = {slots: runs[2, slots]["peak"] - runs[1, slots]["peak"] for slots in (few, many)}
            row[f"path_per_slot_layer_{key}"] = (layer[many] - layer[few]) / (many - few)
            row[f"path_per_layer_{key}"] = layer[few] - few * row[f"path_per_slot_layer_{key}"]
            if not checkpointing:  # the main path runs alike either way
                row["kv_per_token_layer"] = ((runs[2, many]["after_main_path"] - runs[1, many]["after_main_path"])
                                             / runs[1, many]["tokens"])
        head = {slots: step_bytes(architecture, 1, None, slots, False)["head_phase"] for slots in (few, many)}
        vocabulary = architecture["vocab_size"]
        row["loss_per_slot_vocabulary_entry"] = (head[many] - head[few]) / (many - few) / vocabulary
        per_slot = row["loss_per_slot_vocabulary_entry"] * vocabulary
        row["head_per_vocabulary_entry"] = (head[few] - few * per_slot) / vocabulary
        row["path_parameters"] = path_parameters(architecture)
        row["measured_at"] = {"slots": [few, many], "layers": [1, 2], "batch": 1}
        figures[name] = row
        print(name, json.dumps(row), flush=True)
    return figures


def estimate(figures: dict, architecture: dict, batch: int, sequence: int, checkpointing: bool) -> dict:
    """GiB of a bf16-mixed L2D-LoRA step at `batch` x `sequence`, every position supervised."""
    layers, vocabulary = architecture["num_hidden_layers"], architecture["vocab_size"]
    heads, kv = architecture["num_attention_heads"], architecture["num_key_value_heads"]
    key = "checkpointing" if checkpointing else "no_checkpointing"
    slots = batch * sequence
    parts = {
        "frozen weights (fp32)": 4 * parameters(architecture),
        "path weights, grads, AdamW (fp32)": 16 * figures["path_parameters"],
        "KV cache": figures["kv_per_token_layer"] * slots * layers,
        "path, per layer": figures[f"path_per_layer_{key}"] * layers,
        "path activations": figures[f"path_per_slot_layer_{key}"] * slots * layers,
        # checkpointing: the backward pass recomputes one block at a time, whose activations are then alive too
        "one block recomputed": (figures["path_per_layer_no_checkpointing"]
                                 + figures["path_per_slot_layer_no_checkpointing"] * slots) if checkpointing else 0,
        "LM head copy": figures["head_per_vocabulary_entry"] * vocabulary,
        "loss (vocabulary-sized)": figures["loss_per_slot_vocabulary_entry"] * slots * vocabulary,
        "loss chunk (float32)": CHUNK_BYTES,
        "attention bias": 2 * batch * (heads // kv) * sequence * sequence,
    }
    parts = {k: v / GiB for k, v in parts.items()}
    return {**parts, "total": sum(parts.values())}


def parameters(architecture: dict) -> int:
    d, ff, layers = architecture["hidden_size"], architecture["intermediate_size"], architecture["num_hidden_layers"]
    hd = architecture.get("head_dim") or d // architecture["num_attention_heads"]
    q, kv = architecture["num_attention_heads"] * hd, architecture["num_key_value_heads"] * hd
    embeddings = architecture["vocab_size"] * d * (1 if architecture.get("tie_word_embeddings") else 2)
    return layers * (d * q + 2 * d * kv + q * d + 3 * d * ff + 2 * d) + embeddings + d


def path_parameters(architecture: dict) -> int:
    """The L2D-LoRA path's trainable parameters (L2DConfig defaults), counted on a 1-layer copy and scaled."""
    counts = []
    for layers in (1, 2):
        base, _ = random_model({**architecture, "num_hidden_layers": layers, "vocab_size": SMALL_VOCABULARY},
                               dtype=torch.float32)
        counts.append(L2DModel(base, L2DConfig()).num_trainable_parameters())
    per_layer = counts[1] - counts[0]
    return counts[0] - per_layer + per_layer * architecture["num_hidden_layers"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/bench/memory.json")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    figures = measure()
    table = []
    for name, architecture in (("llama1b", LLAMA1B), ("llama8b", LLAMA8B)):
        for batch in (1, 4, 8):
            for checkpointing in (False, True):
                row = estimate(figures[name], architecture, batch, 2048, checkpointing)
                table.append({"model": name, "batch": batch, "sequence": 2048, "checkpointing": checkpointing,
                              **{k: round(v, 2) for k, v in row.items()}})
    for row in table:
        print(json.dumps(row))
    args.out.write_text(json.dumps({"figures": figures, "estimate": table}, indent=2) + "\n")


if __name__ == "__main__":
    main()
