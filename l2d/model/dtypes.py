"""The dtypes a base model loads in, by name (config values such as `dtype=bfloat16`), and the device it runs on."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def device_named(name: str) -> torch.device:
    """The device of a `device=` setting: auto is CUDA where there is one, else the CPU; cpu, cuda, cuda:N as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def store_frozen(module: torch.nn.Module, dtype) -> int:
    """Cast every frozen parameter of `module` (requires_grad False: the main path, and the LM projections the
    diffusion path shares) to `dtype` in place, leaving trainable parameters (the optimizer's float32 master
    weights) and buffers (RoPE frequencies) as they are. Under bf16 autocast this saves casting each frozen weight
    again at every forward. Returns the number of parameters cast."""
    dtype, cast = resolve_dtype(dtype), 0
    for parameter in module.parameters():
        if not parameter.requires_grad and parameter.is_floating_point() and parameter.dtype != dtype:
            parameter.data = parameter.data.to(dtype)
            cast += parameter.numel()
    return cast
