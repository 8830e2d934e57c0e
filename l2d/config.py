"""Where the Hydra config tree lives, and the resolvers it uses."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


def config_dir() -> str:
    """`conf/` beside the package in a source checkout, `l2d/conf` in an installed wheel."""
    for candidate in (Path(__file__).parent / "conf", Path(__file__).parent.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate.resolve())
    raise FileNotFoundError("the l2d config tree (conf/train.yaml) was not found beside the package")


def accumulation(batch_size: int, micro_batch_size: int, devices) -> int:
    """Micro-batches per optimizer step so that micro_batch_size x devices x it = batch_size."""
    devices = devices if isinstance(devices, int) and devices > 0 else max(1, torch.cuda.device_count())
    per_step = micro_batch_size * devices
    if batch_size % per_step:
        raise ValueError(f"batch_size={batch_size} must be a multiple of data.micro_batch_size x trainer.devices "
                         f"= {micro_batch_size} x {devices}")
    return batch_size // per_step


def cpu_bf16_units() -> str | None:
    """The bfloat16 matrix units of this CPU, detected at run time: "AMX" (Intel Sapphire Rapids and later),
    "AVX512-BF16" (AMD Zen 4 and later, Intel Cooper Lake), or None (bfloat16 is then emulated, and slower)."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    return "AVX512-BF16" if torch.cpu._is_avx512_bf16_supported() else None


def precision(accelerator: str = "auto") -> str:
    """trainer.precision's auto: bf16-mixed on a GPU, and on a CPU with bfloat16 matrix units, where it was
    measured faster (docs/performance.md, CPU); 32-true on other CPUs. An explicit trainer.precision replaces it."""
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    units = None if on_gpu else cpu_bf16_units()
    chosen = "bf16-mixed" if on_gpu or units else "32-true"
    announce(f"trainer.precision auto: {chosen} ("
             + ("GPU" if on_gpu else f"CPU with {units} bfloat16 matrix units" if units
                else "CPU without bfloat16 matrix units") + "; trainer.precision=32-true or bf16-mixed overrides it)")
    return chosen


def evaluation_dtype(device_type: str, batch_size: int) -> torch.dtype:
    """evaluate's dtype auto: bfloat16 on a GPU, and on a CPU with bfloat16 matrix units when it decodes batches
    (batch_size > 1), where it was measured faster; float32 at batch 1 (bfloat16 was slower there on an AMX CPU)
    and on other CPUs. An explicit dtype replaces it."""
    units = cpu_bf16_units() if device_type == "cpu" else None
    chosen = torch.bfloat16 if device_type == "cuda" or (units and batch_size > 1) else torch.float32
    why = ("GPU" if device_type == "cuda" else f"CPU with {units} bfloat16 matrix units, batches of {batch_size}"
           if units else "CPU without bfloat16 matrix units")
    announce(f"dtype auto: {str(chosen).removeprefix('torch.')} ({why}; dtype=float32 or bfloat16 overrides it)")
    return chosen


_announced: set[str] = set()


def announce(line: str) -> None:
    """Log a line once per process: a resolver runs at every read of its field."""
    if line not in _announced:
        _announced.add(line)
        log.info(line)


def register_resolvers() -> None:
    """The resolvers the configs call, and the schemas they compose onto (l2d.schema): before any composing."""
    from l2d.schema import register  # the schemas import the model's code; this module stays light

    for name, function in (("l2d_accumulate", accumulation), ("l2d_precision", precision), ("l2d_max", max)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
    register()
