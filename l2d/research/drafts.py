"""Drafts: a share of the training x_t shows the frozen LM's own guess of the token instead of the token."""

from __future__ import annotations

import torch

from l2d.diffusion.path import NoisyToken, add_noise
from l2d.diffusion.sampling import sample_tokens
from l2d.research.transform import SlotTransform


class Drafts(SlotTransform):
    """`drafts=p`: each supervised slot's x_t, with probability p, carries a draft of its token, sampled from the
    frozen LM's next-token distribution at that slot, instead of the target: x_t = t·V_draft + (1 − t)·x0, the same
    x0 and t. The loss is still the target's cross-entropy.

    Why: at inference the chain's first evaluation (t = 0) is exactly the LM, so its first x̂ is such a draft.
    Trained only on true tokens (the paper), the path learns that a readable x_t is right and can only confirm it;
    with drafts it also learns to correct what x_t shows.

    Measured (experiments/smollm2_rl, `python -m experiments.smollm2_rl.run drafts`; SmolLM2-135M on 2-term
    arithmetic, σ 8 on the LoRA model, drafts 0.5, one seed, 500 test problems, paired against the same path
    without drafts): +2.8 points sampled at levels 2 (p = 0.0019) and +3.6 at levels 8 (p = 0.00016) under the
    paper's protocol, +2.4 greedily (p ≈ 0.1); accuracy at every level count alike, so steps still do not pay
    (levels 8 against 2: +0.2 greedy, p = 1), and RL on it moved nothing. Kept: it helps, and costs one LM-head
    projection per drafted slot. The runs predate this module, which draws x0 before the drafts (they drew it
    after): the same distribution, other random numbers for a given seed.
    """

    name = "drafts"

    def __init__(self, setting: float) -> None:
        if isinstance(setting, bool) or not isinstance(setting, (int, float)) or not 0.0 <= setting <= 1.0:
            raise ValueError(f"drafts must be a probability in [0, 1], got {setting!r}")
        super().__init__(float(setting))

    def __call__(self, model, slots, noisy: NoisyToken, generator: torch.Generator | None) -> NoisyToken:
        drafted = self.drafted(model, slots, generator)
        return add_noise(model.vocabulary(drafted), noisy.t, model.config.sigma, x0=noisy.x0)

    @torch.no_grad()
    def drafted(self, model, slots, generator: torch.Generator | None) -> torch.Tensor:
        """The slots' targets (B, S), each replaced with probability `setting` by a token sampled from the frozen
        LM at its slot (what the chain's t = 0 evaluation proposes)."""
        tokens = slots.targets.clamp_min(0)
        chosen = torch.rand(tokens.shape, device=tokens.device, generator=generator) < self.setting
        drafted = tokens.clone()
        # the LM head only at the chosen slots: a (slots x vocabulary) projection is the cost of a draft
        drafted[chosen] = sample_tokens(model.lm_logits(slots.context.hidden[chosen]), 1.0, generator)
        return drafted

    def describe(self) -> str:
        return f"{self.setting:g} of training x_t showed the LM's own draft"
