"""The paper's learning-rate schedule: linear warm-up, then linear decay to a final LR."""

from __future__ import annotations

import logging

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

log = logging.getLogger(__name__)


def warmup_linear_decay(optimizer: Optimizer, total_steps: int, warmup_steps: int, final_lr: float) -> LambdaLR:
    """LR rises linearly to each group's peak over `warmup_steps`, then falls linearly to `final_lr` (the paper's
    100 and 1e-6 are conf/train.yaml's `scheduler`).

    Warm-up is capped at a tenth of the run, so a short run still spends most steps at its peak.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    capped = min(warmup_steps, max(1, total_steps // 10))
    if capped != warmup_steps:
        log.warning("warmup_steps=%d is over a tenth of the %d-step run; warming up for %d steps",
                    warmup_steps, total_steps, capped)
    peaks = [group["lr"] for group in optimizer.param_groups]

    def factor(peak: float):
        floor = min(final_lr / peak, 1.0) if peak > 0 else 1.0

        def at(step: int) -> float:
            if step < capped:
                return (step + 1) / capped
            progress = min(1.0, (step - capped) / max(1, total_steps - capped))
            return 1.0 - (1.0 - floor) * progress
        return at

    return LambdaLR(optimizer, [factor(peak) for peak in peaks])
