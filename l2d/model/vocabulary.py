"""The diffusion vocabulary: every LM token as a point V_y of the small diffusion space."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DiffusionVocabulary(nn.Module):
    """V_y = sqrt(d̄) * W_v E_y / ||W_v E_y||, with E the LM's frozen input embeddings.

    Each component of V_y then has unit mean square, which the input normalisation of x_t assumes.
    """

    def __init__(self, lm_width: int, dim: int):
        super().__init__()
        self.dim = dim
        self.W_v = nn.Linear(lm_width, dim, bias=False)

    def forward(self, token_embeddings: torch.Tensor) -> torch.Tensor:
        """(..., d) rows of E -> (..., d̄) float32 diffusion tokens."""
        projected = self.W_v(token_embeddings.to(self.W_v.weight.dtype)).float()
        return math.sqrt(self.dim) * F.normalize(projected, dim=-1)
