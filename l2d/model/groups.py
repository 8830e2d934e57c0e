"""The trainable parts of an L2D path by name, and `module.lr_multipliers`, which trains each part at its own
multiple of the learning rate (0 holds a part where it started, e.g. {w_d: 0, conditioning: 0}).

One place for both: the table of parts (also the per-part gradient norms' names), the check of a setting (the
command line's and the training modules'), the optimizer's parameter groups and their learning rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

KEY = "module.lr_multipliers"
# (part, a marker in the parameter's name); what matches none is a full copy of an LM projection (l2d_full).
PARTS = (("w_d", "fusion."), ("modulation", ".modulation."), ("conditioning", "conditioning."),
         ("translation", "translation."), ("vocabulary", "vocabulary."), ("lora_A", "lora_A"), ("lora_B", "lora_B"))
OTHER = "projections"
NAMES = (*(part for part, _ in PARTS), OTHER)


def trainable_groups(named_parameters) -> dict[str, list[nn.Parameter]]:
    """(name, parameter) pairs of a path's trainable parameters, by the part they belong to."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        part = next((part for part, marker in PARTS if marker in name), OTHER)
        groups.setdefault(part, []).append(parameter)
    return groups


def checked_multipliers(multipliers: Mapping[str, Any] | None, without_parts: str | None = None) -> dict[str, float]:
    """{part: m >= 0} as given (null: none). `without_parts` names what is trained when it is not an L2D path
    (method=lora, Finetune): it has no parts, so any multiplier is refused."""
    if multipliers is None:
        return {}
    if not isinstance(multipliers, Mapping):
        raise ValueError(f"{KEY} must be a mapping like {{w_d: 0.1}}, got {multipliers!r}")
    if multipliers and without_parts:
        raise ValueError(f"{KEY} scales the diffusion path's parameter groups; {without_parts} has none")
    for name, value in multipliers.items():
        if name not in NAMES:
            raise ValueError(f"{KEY}.{name}: not a parameter group; allowed: {', '.join(NAMES)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{KEY}.{name} must be a number >= 0, got {value!r}")
    return dict(multipliers)


def optimizer_groups(network: nn.Module, multipliers: dict[str, float]) -> list:
    """What the optimizer steps: every trainable parameter of `network`, or, with multipliers, one named group per
    part of the path (`scale_learning_rates` then sets each part's rate); a part this path lacks is refused."""
    if not multipliers:
        return [p for p in network.parameters() if p.requires_grad]
    groups = network.trainable_groups()
    missing = sorted(set(multipliers) - set(groups))
    if missing:
        raise ValueError(f"{KEY} names {missing}: not a trainable group of this path; its groups are {sorted(groups)}")
    return [{"params": parameters, "name": name} for name, parameters in groups.items()]


def scale_learning_rates(optimizer, multipliers: dict[str, float]) -> None:
    """Each named group's lr times its multiplier; before any scheduler, which takes each group's lr as its peak."""
    for group in optimizer.param_groups:
        group["lr"] *= multipliers.get(group.get("name"), 1.0)
