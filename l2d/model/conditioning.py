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
    """c -> `chunks` vectors of the LM width, (..., chunks, d). The output layer starts at zero (adaLN-Zero)."""

    def __init__(self, conditioning_dim: int, width: int, chunks: int):
        super().__init__()
        self.chunks, self.width = chunks, width
        self.mlp = nn.Sequential(nn.Linear(conditioning_dim, conditioning_dim), nn.SiLU(),
                                 nn.Linear(conditioning_dim, chunks * width))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.mlp(c).unflatten(-1, (self.chunks, self.width))


class FusionWeight(nn.Module):
    """w_d(t) = head(c(t, j)) - head(c(0, j)): exactly 0 at t = 0, so the LM is untouched there."""

    def __init__(self, conditioning_dim: int, width: int):
        super().__init__()
        self.head = ModulationHead(conditioning_dim, width, chunks=1)

    def forward(self, c_t: torch.Tensor, c_0: torch.Tensor) -> torch.Tensor:
        # Two calls with identical shapes, so head(c_0) - head(c_0) is 0 to the bit at t = 0.
        return self.head(c_t)[..., 0, :] - self.head(c_0)[..., 0, :]


class LiveConditioning:
    """What (t, class) gives the path: each block's modulation (..., 6, d) and w_d(t) (..., d),
    computed from c(t, j) block by block (training, and solvers with per-row times)."""

    def __init__(self, path, t: torch.Tensor, class_labels: torch.Tensor | None):
        self.path = path
        self.c_t = path.conditioning(t, class_labels)
        self.c_0 = path.conditioning(torch.zeros_like(t), class_labels)

    def block(self, index: int) -> torch.Tensor:
        return self.path.blocks[index].modulation(self.c_t)

    def fusion(self) -> torch.Tensor:
        return self.path.fusion(self.c_t, self.c_0)


class ConditioningTable:
    """The same for one time t, computed once for each class and then looked up per query slot.

    Conditioning does not depend on x_t, so on a fixed grid every token reuses the tables of the
    grid's times: a gather replaces 2 linear layers per block per evaluation.
    """

    def __init__(self, path, t: float, num_classes: int):
        rows = torch.arange(num_classes + 1, device=path.translation[0].weight.device)
        live = LiveConditioning(path, torch.full(rows.shape, t, device=rows.device), rows if num_classes else None)
        self.modulation = torch.stack([live.block(i) for i in range(len(path.blocks))], dim=1)  # (K, blocks, 6, d)
        self.weight = live.fusion()  # (K, d)

    def for_slots(self, slot_classes: torch.Tensor | None, slots_shape) -> SlotConditioning:
        if slot_classes is None:  # one row, broadcast to every slot without a copy
            return SlotConditioning(self.modulation[0].expand(*slots_shape, *self.modulation.shape[1:]),
                                    self.weight[0].expand(*slots_shape, -1))
        return SlotConditioning(self.modulation[slot_classes], self.weight[slot_classes])


class SlotConditioning:
    def __init__(self, modulation: torch.Tensor, weight: torch.Tensor):
        self.modulation, self.weight = modulation, weight  # (B, Q, blocks, 6, d), (B, Q, d)

    def block(self, index: int) -> torch.Tensor:
        return self.modulation[:, :, index]

    def fusion(self) -> torch.Tensor:
        return self.weight
