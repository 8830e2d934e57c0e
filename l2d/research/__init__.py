"""Research options: what the project tried on top of the paper's training, kept apart from the method.

Each option is a training-time transform of the (x_t, t) the diffusion path sees at its supervised slots
(`SlotTransform`); decoding, validation losses and evaluation never apply one, so at t = 0 the model is still
exactly the base LM. A method config lists the options a run trains with, {name: setting}
(`method.network.config.research`; conf/train.yaml has a shorthand per option, e.g. `drafts=0.5`); a setting of
0 (or null) is off, and none is the paper's training, the default. The export records them and its card names
them. Each option's docstring ends with what the project measured; docs/research.md gathers them, with the
options tried and removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from l2d.diffusion.path import NoisyToken
from l2d.research.drafts import Drafts
from l2d.research.transform import SlotTransform

log = logging.getLogger(__name__)

OPTIONS: dict[str, type[SlotTransform]] = {option.name: option for option in (Drafts,)}
# Options measured, found harmful and removed: what to say to a command line or a run that still sets one.
REMOVED = {"chain_states": "chain_states (training (x_t, t) taken from the path's own decoding chain) was removed: "
                           "measured harmful, 6.6% greedy against the paper's training's 19.8% (docs/research.md); "
                           "its study needs l2d at commit 6b92002 or earlier"}

__all__ = ["OPTIONS", "REMOVED", "Drafts", "SlotTransform", "apply", "card_rows", "checked", "upgrade"]


def checked(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options that are on, {name: setting}, each setting checked by its option (one line when bad)."""
    on = {}
    for name, setting in dict(settings or {}).items():
        if name in REMOVED:
            raise ValueError(REMOVED[name])
        if name not in OPTIONS:
            raise ValueError(f"research.{name}: not a research option; known: {', '.join(OPTIONS)}")
        OPTIONS[name](setting)
        if setting:
            on[name] = setting
    return on


def transforms(settings: Mapping[str, Any]) -> list[SlotTransform]:
    return [OPTIONS[name](setting) for name, setting in settings.items()]


def apply(settings: Mapping[str, Any], model, slots, noisy: NoisyToken,
          generator: torch.Generator | None) -> NoisyToken:
    """The draw the path trains on: the paper's, then each option's transform in the order listed."""
    for transform in transforms(settings):
        noisy = transform(model, slots, noisy, generator)
    return noisy


def card_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(transform.name, transform.describe()) for transform in transforms(settings)]


def upgrade(fields: Mapping[str, Any], keep_removed: bool = False) -> dict[str, Any]:
    """L2DConfig's fields as exports and run fingerprints from before this package hold them: `drafts` at the top
    level (now research.drafts), `chain_states` and `chain_levels` (removed). A removed option that was on is kept
    in `research` with `keep_removed` (a resumed run must refuse it), or else dropped with a warning: an export
    trained with it still decodes."""
    fields = dict(fields)
    if not {"drafts", "chain_states", "chain_levels"} & set(fields):
        return fields
    research = dict(fields.get("research") or {})
    drafts = fields.pop("drafts", 0.0)
    if drafts:
        research["drafts"] = drafts
    chain_states = fields.pop("chain_states", 0.0)
    fields.pop("chain_levels", None)
    if chain_states and keep_removed:
        research["chain_states"] = chain_states
    elif chain_states:
        log.warning("trained with chain_states=%g, an option since removed: it loads and decodes; its record of that "
                    "option is dropped", chain_states)
    fields["research"] = research
    return fields
