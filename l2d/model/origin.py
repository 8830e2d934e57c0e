"""Where a loaded LM came from: the name it was loaded by, and the finetuned export applied to it, if any.

What is trained on the LM records this in its export (L2DConfig.base_model/finetuned, a lora/full export's
record), from which l2d.export reads the provenance chain back. In memory it is kept on the model object, not in its
Hugging Face config: a config's attributes are saved into a full finetune's config.json and came back with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

ATTRIBUTE = "l2d_origin"
# Where exports before this module kept it: in the config, and so in a full export's config.json.
LEGACY_CONFIG_KEYS = ("l2d_name_or_path", "l2d_finetuned")


@dataclass(frozen=True)
class Origin:
    """name: how to load the base again (a short name, a path, a hub id); finetuned: the record of the lora/full
    export applied to it ({"path", "method", "base_model", "sha256"}), None for the base itself."""

    name: str
    finetuned: dict | None = None


def set_origin(model: nn.Module, name: str, finetuned: dict | None = None) -> nn.Module:
    """Mark `model` as loaded by `name` (with `finetuned` applied); forget any origin its config carried."""
    for key in LEGACY_CONFIG_KEYS:
        model.config.__dict__.pop(key, None)
    setattr(model, ATTRIBUTE, Origin(name, finetuned))
    return model


def origin_of(model: nn.Module) -> Origin:
    """The origin `set_origin` gave `model`; a model loaded by other means is named by its config's _name_or_path."""
    return getattr(model, ATTRIBUTE, None) or Origin(model.config._name_or_path)
