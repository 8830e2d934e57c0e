"""The one place that talks to the Hugging Face hub (the `datasets` package is optional)."""

from __future__ import annotations

from typing import Any


def load_hub_dataset(name: str, config: str | None, split: str, *, streaming: bool, offline_hint: str) -> Any:
    """`datasets.load_dataset(name, config, split=...)`, failing with one clear line when it cannot.

    `offline_hint` says what to use instead (e.g. a local file option) when the hub is unreachable.
    """
    try:
        from datasets import load_dataset
    except ImportError:
        raise ImportError(f"loading {name} from the hub needs the `datasets` package "
                          f"(pip install 'l2d[hub]'); {offline_hint}") from None
    try:
        return load_dataset(name, config, split=split, streaming=streaming)
    except (ConnectionError, OSError) as error:  # OSError covers offline mode and missing files on the hub
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectionError(f"could not load {name} ({config or 'default'}, {split}) from the Hugging Face hub: "
                              f"{reason}. {offline_hint}") from None
