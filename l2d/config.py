"""Where the Hydra config tree lives, and the resolvers it uses."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf


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


def precision() -> str:
    return "bf16-mixed" if torch.cuda.is_available() else "32-true"


def register_resolvers() -> None:
    for name, function in (("l2d_accumulate", accumulation), ("l2d_precision", precision), ("l2d_max", max)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
