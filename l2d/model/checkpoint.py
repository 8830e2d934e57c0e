"""Saving and restoring the diffusion path alone: safetensors weights plus a JSON config.

Nothing is unpickled on load. The JSON records the base model (its name and architecture), so a
checkpoint is refused, with a clear message, on a base it was not made for.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from l2d.model.config import L2DConfig

WEIGHTS_FILE = "diffusion_path.safetensors"
CONFIG_FILE = "l2d_config.json"
FORMAT = "l2d-diffusion-path"
ARCHITECTURE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "intermediate_size", "vocab_size")


def base_architecture(base) -> dict:
    return {key: getattr(base.config, key, None) for key in ARCHITECTURE_KEYS}


def atomic_directory(directory: Path, write) -> None:
    """Call write(tmp_dir) then move tmp_dir into place, so `directory` is never half-written."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        write(staging)
        if directory.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, retired / "old")
            os.replace(staging, directory)
            shutil.rmtree(retired)
        else:
            os.replace(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def save_diffusion_path(model, directory) -> None:
    tensors = {name: p.detach().contiguous().cpu() for name, p in model.trainable_named_parameters()}
    meta = {"format": FORMAT, "version": 1, "config": model.config.to_dict(),
            "base_architecture": base_architecture(model.base)}

    def write(staging: Path) -> None:
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    atomic_directory(Path(directory), write)


def read_meta(directory) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not an L2D checkpoint directory (expected {CONFIG_FILE} "
                                f"and {WEIGHTS_FILE})")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an L2D diffusion-path config (format {meta.get('format')!r})")
    return meta


def check_base(meta: dict, base, directory) -> None:
    chain = meta["config"].get("finetuned")
    given = getattr(base.config, "l2d_finetuned", None)
    if (chain or {}).get("sha256") != (given or {}).get("sha256"):
        def describe(record):
            return f"finetuned from {record['path']}" if record else "without finetuning"
        raise ValueError(f"checkpoint {directory} was trained on {meta['config'].get('base_model')!r} "
                         f"{describe(chain)}; the given base is {describe(given)}. Load the base as the checkpoint "
                         "records it (L2DModel.from_pretrained without base=, or python -m l2d.evaluate)")
    recorded, actual = meta["base_architecture"], base_architecture(base)
    if recorded != actual:
        differing = {k: (recorded.get(k), actual.get(k)) for k in ARCHITECTURE_KEYS if recorded.get(k) != actual.get(k)}
        raise ValueError(f"checkpoint {directory} was made for base model {meta['config'].get('base_model')!r}; "
                         f"the given base differs in (checkpoint, given): {differing}")


def load_trainable_state(model, state: dict, source) -> None:
    """Copy a {name: tensor} state into the diffusion path's own parameters, all or nothing."""
    expected = dict(model.trainable_named_parameters())
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source} does not match this diffusion path: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(f"{source}: {name} has shape {tuple(tensor.shape)}, expected {tuple(expected[name].shape)}")
    with torch.no_grad():
        for name, tensor in state.items():
            expected[name].copy_(tensor)


def load_diffusion_path(cls, directory, base=None, dtype=None):
    from l2d.model.finetune import finetuned_base
    from l2d.model.loading import load_base_model

    meta = read_meta(directory)
    config = L2DConfig.from_dict(meta["config"])
    if base is None:
        if not config.base_model:
            raise ValueError(f"{directory}: the checkpoint names no base model; pass base=")
        base, _ = load_base_model(config.base_model, dtype=dtype or torch.float32)
        if config.finetuned:
            base = finetuned_base(base, config.finetuned["path"], expected=config.finetuned)
    check_base(meta, base, directory)
    model = cls(base, config)
    load_trainable_state(model, load_file(str(Path(directory) / WEIGHTS_FILE)), Path(directory) / WEIGHTS_FILE)
    return model.eval()  # as transformers' from_pretrained: ready for inference
