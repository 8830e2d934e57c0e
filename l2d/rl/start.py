"""The policy an RL stage starts from: an L2D export (its diffusion path trains on) or a lora/full export."""

from __future__ import annotations

from pathlib import Path

import torch

from l2d.export import is_l2d, load_l2d, read_export, recorded_base
from l2d.model.checkpoint import CONFIG_FILE
from l2d.model.finetune import FINETUNE_FILE, Finetune, weights_fingerprint
from l2d.rl.policy import TokenPolicy


def starting_policy(init: Path, method: str, dtype: torch.dtype = torch.float32):
    """(network, tokenizer, the record of `init` {"path", "method", "sha256"}) for `method` (l2d_rl: an L2D
    export, the frozen base and any finetuned chain rebuilt as it records; lora_rl: a lora/full export)."""
    init = Path(init).resolve()
    l2d = is_l2d(method)
    export = read_export(init) if (init / CONFIG_FILE).is_file() or (init / FINETUNE_FILE).is_file() else None
    if export is None or export.l2d != l2d:
        other = ("not an export of l2d.train" if export is None else
                 "an L2D export: use method=l2d_rl" if export.l2d else "a lora/full export: use method=lora_rl")
        raise ValueError(f"init={init} has no {CONFIG_FILE if l2d else FINETUNE_FILE}; method={method} starts from "
                         f"{'an L2D' if l2d else 'a lora/full'} export ({other})")
    base, tokenizer = recorded_base(export.base_model, export.finetuned, dtype)
    network = load_l2d(init, base=base).train() if l2d else TokenPolicy(Finetune(base, init=init))
    start = {"path": str(init), "method": export.method, "sha256": weights_fingerprint(init)}
    return network, tokenizer, start


def mark_reinforced(network, start: dict, task: str, settings: dict) -> None:
    """Record the RL stage in the policy (its export's record then says it): what it started from, the task whose
    verifier rewards it, how many rollout batches, and whether the reward was the verifier's partial credit."""
    record = {"init": start, "task": task, "steps": settings["steps"], "partial_credit": settings["partial_credit"]}
    if is_l2d(network):
        network.config.reinforced = record
    else:
        network.finetune.reinforced = record
