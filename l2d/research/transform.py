"""The interface of a research option: a training-time transform of the (x_t, t) the path sees at its slots."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import torch

from l2d.diffusion.path import NoisyToken

if TYPE_CHECKING:
    from l2d.model.l2d import L2DModel, Slots


class SlotTransform(ABC):
    """One research option, built from its setting (checked here, one line naming the option when bad).

    Called in training only, on the supervised slots of a batch, after the paper's draw: it gets that draw (x0, x1 =
    V_y, x_t = t·x1 + (1 − t)·x0, t, each (B, S, d̄) or (B, S)) and returns the one the path sees instead. The loss
    stays the cross-entropy of the true next token; slots without a target (held at t = 0) must stay as they are.
    """

    name: str  # its key in the method config's `research` mapping, and its row in the export's card

    def __init__(self, setting: Any) -> None:
        self.setting = setting

    @abstractmethod
    def __call__(self, model: L2DModel, slots: Slots, noisy: NoisyToken,
                 generator: torch.Generator | None) -> NoisyToken:
        ...

    @abstractmethod
    def describe(self) -> str:
        """What the option did to training, for the export's card (its row: `name | describe()`)."""
