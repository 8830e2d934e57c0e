"""Reading safetensors weight files: a truncated or corrupt one is refused in one line that names it
(safetensors' own error, e.g. "invalid header length", names no file)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file


class UnreadableWeights(ValueError):
    """A weight file whose header cannot be read: cut short, overwritten, or not safetensors at all."""


def unreadable(path: Path, error: SafetensorError) -> UnreadableWeights:
    return UnreadableWeights(f"{path} is not a readable safetensors file (truncated or corrupt): {error}")


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise unreadable(path, error) from None


def check_weights(directory: Path) -> None:
    """Every *.safetensors file in `directory` has a whole header that covers its data (read, not loaded):
    for exports that peft or transformers load, whose errors name no file."""
    for path in sorted(Path(directory).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except SafetensorError as error:
            raise unreadable(path, error) from None
