"""Timestep (+ class) conditioning: the vector c, the per-block modulation, and w_d(t)."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features (..., dim) of t in [0, 1], taken as is (not scaled by 1000), as the reference."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float().unsqueeze(-1) * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Conditioning(nn.Module):
    """c(t, j) = MLP(features(t)) + class embedding g_j (class 0 is the null class)."""

    def __init__(self, frequency_dim: int, width: int, num_classes: int):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.class_embedding = nn.Embedding(num_classes + 1, width) if num_classes > 0 else None

    def forward(self, t: torch.Tensor, class_labels: torch.Tensor | None) -> torch.Tensor:
        features = timestep_features(t, self.frequency_dim).to(self.mlp[0].weight.dtype)
        c = self.mlp(features)
        if self.class_embedding is not None:
            c = c + self.class_embedding(class_labels)
        return c


class ModulationHead(nn.Module):
    """c -> `chunks` vectors of the LM width. The output layer starts at zero (adaLN-Zero)."""

    def __init__(self, conditioning_dim: int, width: int, chunks: int):
        super().__init__()
        self.chunks = chunks
        self.mlp = nn.Sequential(nn.Linear(conditioning_dim, conditioning_dim), nn.SiLU(),
                                 nn.Linear(conditioning_dim, chunks * width))

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.mlp(c).chunk(self.chunks, dim=-1)


class FusionWeight(nn.Module):
    """w_d(t) = head(c(t, j)) - head(c(0, j)): exactly 0 at t = 0, so the LM is untouched there."""

    def __init__(self, conditioning_dim: int, width: int):
        super().__init__()
        self.head = ModulationHead(conditioning_dim, width, chunks=1)

    def forward(self, c_t: torch.Tensor, c_0: torch.Tensor) -> torch.Tensor:
        # Two calls with identical shapes, so head(c_0) - head(c_0) is 0 to the bit at t = 0.
        return self.head(c_t)[0] - self.head(c_0)[0]
