"""The rectified-flow path of L2D: where the noise is added, how t is drawn, and the velocity.

x0 ~ N(0, sigma^2 I),  x_t = t * x1 + (1 - t) * x0,  x1 = V_y (the target's diffusion token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class NoisyToken:
    """One draw of the path: x0 (noise), x1 (clean token), x_t and t; shapes (..., dim) and (...)."""

    x0: torch.Tensor
    x1: torch.Tensor
    x_t: torch.Tensor
    t: torch.Tensor


def sample_timesteps(shape, sampling: str, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """t in [0, 1]: `uniform`, or `cosmap` t = 1 - 1 / (tan(pi u / 2) + 1) with u ~ U[0, 1]."""
    u = torch.rand(shape, device=device, generator=generator)
    if sampling == "uniform":
        return u
    if sampling == "cosmap":
        return 1.0 - 1.0 / (torch.tan(0.5 * math.pi * u) + 1.0)
    raise ValueError(f"timestep_sampling must be 'uniform' or 'cosmap', got {sampling!r}")


def add_noise(x1: torch.Tensor, t: torch.Tensor, sigma: float, generator: torch.Generator | None = None,
              x0: torch.Tensor | None = None) -> NoisyToken:
    """Corrupt clean tokens x1 (..., dim) at times t (...): x_t = t x1 + (1 - t) x0, x0 ~ N(0, sigma^2 I)
    drawn here unless given."""
    if x0 is None:
        x0 = torch.randn(x1.shape, device=x1.device, dtype=x1.dtype, generator=generator) * sigma
    t_ = t.unsqueeze(-1).to(x1.dtype)
    return NoisyToken(x0=x0, x1=x1, x_t=t_ * x1 + (1.0 - t_) * x0, t=t)


def x_t_std(t: torch.Tensor, sigma: float) -> torch.Tensor:
    """Std of one component of x_t: sqrt((1 - t)^2 sigma^2 + t^2), since V_y components have unit variance."""
    return torch.sqrt((1.0 - t) ** 2 * sigma**2 + t**2)


def velocity(x1_estimate: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """dx/dt = (x̂ - x) / (1 - t); t (B,) per row. Zero at t >= 1, where the path has arrived."""
    remaining = (1.0 - t).unsqueeze(-1).to(x.dtype)
    arrived = remaining <= 0
    return torch.where(arrived, torch.zeros_like(x), (x1_estimate - x) / torch.where(arrived, 1.0, remaining))
