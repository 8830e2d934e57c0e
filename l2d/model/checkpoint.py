"""Saving and restoring the diffusion path alone: safetensors weights, a JSON config and a model card.

Nothing is unpickled on load. The JSON records the base model (its name, architecture and a sketch of
its weights), so a checkpoint is refused, with a clear message, on a base it was not made for; a digest of every
file, written last, refuses an export edited or damaged since (l2d.model.digest).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import save_file

from l2d.files import atomic_directory
from l2d.model.card import TrainingRecord, card_and_record, l2d_card
from l2d.model.digest import (
    DIGEST_FILE,
    DIGEST_VERSION,
    ExportError,
    refuse,
    verify_export,
    write_digest,
    written_with_digest,
)
from l2d.model.origin import origin_of

WEIGHTS_FILE = "diffusion_path.safetensors"
CONFIG_FILE = "l2d_config.json"
FORMAT = "l2d-diffusion-path"
VERSION = DIGEST_VERSION  # 2: written with a digest and a base probe, which loading requires; 1: before them
ARCHITECTURE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "intermediate_size", "vocab_size")
PROBE_ROWS, PROBE_SIZE = 64, 32
# bfloat16 rounding moves the sketch by ~0.1%; the same shape with other weights moves it by far more.
PROBE_TOLERANCE = 0.02

log = logging.getLogger(__name__)


def base_architecture(base) -> dict:
    return {key: getattr(base.config, key, None) for key in ARCHITECTURE_KEYS}


def base_probe(base) -> list[float] | None:
    """A sketch of the base's weights: PROBE_ROWS input-embedding rows spread over the vocabulary,
    projected on PROBE_SIZE fixed random directions. The same weights give the same sketch in any
    dtype (up to rounding); another model of the same architecture gives another one. None when the
    embeddings are not held whole in this process (sharded)."""
    weight = base.get_input_embeddings().weight.detach()
    if weight.dim() != 2 or not weight.numel() or type(weight) is not torch.Tensor or weight.is_meta:
        return None
    rows = torch.linspace(0, weight.shape[0] - 1, PROBE_ROWS).round().long().to(weight.device)
    sample = weight[rows].float().cpu().flatten()
    directions = torch.randn(PROBE_SIZE, sample.numel(), generator=torch.Generator().manual_seed(0))
    return (directions @ sample / sample.numel() ** 0.5).tolist()


def probe_distance(recorded: list[float], given: list[float]) -> float:
    """Relative distance of two sketches (0: the same weights)."""
    a, b = torch.tensor(recorded), torch.tensor(given)
    return float((a - b).norm() / a.norm().clamp_min(1e-12))


def save_diffusion_path(model, directory, training: TrainingRecord | None = None) -> None:
    """The weights, the JSON config, the model card (README.md; `training`: what the run did, with its decoding
    settings and run fingerprint) and, last, the digest of them all."""
    tensors = {name: p.detach().contiguous().cpu() for name, p in model.trainable_named_parameters()}
    run = training.run if training is not None else None
    # A base held in shards here has no whole embedding to sketch: the run's fingerprint took it at the start.
    probe = base_probe(model.base) or (run or {}).get("fingerprint", {}).get("base.probe")
    meta = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
            "base_architecture": base_architecture(model.base), "base_probe": probe,
            **({"run": run} if run else {})}
    card = l2d_card(model.config, model.num_trainable_parameters(), WEIGHTS_FILE, CONFIG_FILE, training)
    writers = [(WEIGHTS_FILE, lambda staging: save_file(tensors, str(staging / WEIGHTS_FILE),
                                                         metadata={"format": FORMAT})),
               (CONFIG_FILE, lambda staging: (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n"))]
    atomic_directory(Path(directory), [*writers, *card_and_record(card, training), (DIGEST_FILE, write_digest)])


def read_meta(directory) -> dict:
    """The export's JSON config, checked against its digest (an edited σ or start is refused here)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not an L2D checkpoint directory (expected {CONFIG_FILE} "
                                f"and {WEIGHTS_FILE})")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an L2D diffusion-path config (format {meta.get('format')!r})")
    verify_export(directory, has_digest=written_with_digest(meta), only=CONFIG_FILE)
    return meta


def check_base(meta: dict, base, directory) -> None:
    chain = meta["config"].get("finetuned")
    given = origin_of(base).finetuned
    if (chain or {}).get("sha256") != (given or {}).get("sha256"):
        def describe(record):
            return f"finetuned from {record['path']}" if record else "without finetuning"
        raise ExportError(f"checkpoint {directory} was trained on {meta['config'].get('base_model')!r} "
                          f"{describe(chain)}; the given base is {describe(given)}. Load the base as the checkpoint "
                          "records it (L2DModel.from_pretrained without base=, or python -m l2d.evaluate)")
    recorded, actual = meta["base_architecture"], base_architecture(base)
    if recorded != actual:
        differing = {k: (recorded.get(k), actual.get(k)) for k in ARCHITECTURE_KEYS if recorded.get(k) != actual.get(k)}
        raise ExportError(f"checkpoint {directory} was made for base model {meta['config'].get('base_model')!r}; "
                          f"the given base differs in (checkpoint, given): {differing}")
    recorded_probe, given_probe = meta.get("base_probe"), base_probe(base)
    if recorded_probe is None:  # the check that the base has the weights it was trained on
        if written_with_digest(meta):
            refuse(f"{Path(directory) / CONFIG_FILE} records no base_probe, the sketch of the base's weights that "
                   "tells its base from another of the same architecture")
        else:
            log.warning("%s was written before exports sketched their base's weights (base_probe): its base is "
                        "checked by architecture only", directory)
        return
    if given_probe is None:
        log.warning("the base given for %s is held in shards: checked by architecture only", directory)
        return
    distance = probe_distance(recorded_probe, given_probe)
    if distance > PROBE_TOLERANCE:
        raise ExportError(f"checkpoint {directory} was made for base model {meta['config'].get('base_model')!r}; "
                          f"the given base has its architecture but other weights (embedding sketch "
                          f"{distance:.0%} away, at most {PROBE_TOLERANCE:.0%} allowed). Load the recorded "
                          f"base, or a copy of it")


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
            raise ValueError(f"{source}: {name} has shape {tuple(tensor.shape)}, "
                             f"expected {tuple(expected[name].shape)}")
    with torch.no_grad():
        for name, tensor in state.items():
            expected[name].copy_(tensor)
