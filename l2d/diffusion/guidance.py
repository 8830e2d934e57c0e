"""Classifier-free guidance: conditional and unconditional estimates, evaluated as one batch.

Each row's diffusion token is evaluated twice per step, as two query slots of the same row
(slot 0: its class j, slot 1: the null class 0). Both slots attend to the same main-path keys,
so no key/value tensor is copied.
"""

from __future__ import annotations

import torch

NULL_CLASS = 0


def guidance_slots(class_labels: torch.Tensor, guided: bool) -> torch.Tensor:
    """(B,) class labels -> (B, Q) labels of the query slots: [j] or [j, null]."""
    if not guided:
        return class_labels.unsqueeze(1)
    return torch.stack([class_labels, torch.full_like(class_labels, NULL_CLASS)], dim=1)


def combine(x1_slots: torch.Tensor, weight: float | None) -> torch.Tensor:
    """x̂_g = w x̂(g_j) + (1 - w) x̂(g_0) from slots (B, Q, dim); without guidance, slot 0."""
    if weight is None:
        return x1_slots[:, 0]
    return weight * x1_slots[:, 0] + (1.0 - weight) * x1_slots[:, 1]
