"""The policy an RL stage starts from: an L2D export (its diffusion path trains on) or a lora/full export."""

from __future__ import annotations

from pathlib import Path

import torch

from l2d.model.checkpoint import CONFIG_FILE, read_meta
from l2d.model.finetune import FINETUNE_FILE, Finetune, finetuned_base, read_finetune_info, weights_fingerprint
from l2d.model.l2d import L2DModel
from l2d.model.loading import load_base_model
from l2d.rl.policy import TokenPolicy


def starting_policy(init: Path, method: str, dtype: torch.dtype = torch.float32):
    """(network, tokenizer, the record of `init` {"path", "method", "sha256"}) for `method` (l2d_rl: an L2D
    export, the frozen base and any finetuned chain rebuilt as it records; lora_rl: a lora/full export)."""
    init = Path(init).resolve()
    l2d = method.startswith("l2d")
    marker = CONFIG_FILE if l2d else FINETUNE_FILE
    if not (init / marker).is_file():
        other = "a lora/full export: use method=lora_rl" if (init / FINETUNE_FILE).is_file() else \
            "an L2D export: use method=l2d_rl" if (init / CONFIG_FILE).is_file() else "not an export of l2d.train"
        raise ValueError(f"init={init} has no {marker}; method={method} starts from "
                         f"{'an L2D' if l2d else 'a lora/full'} export ({other})")
    record = read_meta(init)["config"] if l2d else read_finetune_info(init)
    base, tokenizer = load_base_model(record["base_model"], dtype=dtype)
    if record.get("finetuned"):  # rebuilt as the export records it, and refused when its parts changed
        base = finetuned_base(base, record["finetuned"]["path"], expected=record["finetuned"])
    network = L2DModel.from_pretrained(init, base=base).train() if l2d else TokenPolicy(Finetune(base, init=init))
    kind = ("l2d_full" if record.get("full_path") else "l2d_lora") if l2d else record["method"]
    start = {"path": str(init), "method": kind, "sha256": weights_fingerprint(init)}
    return network, tokenizer, start
