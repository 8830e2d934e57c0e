"""The one place that talks to the Hugging Face hub (the `datasets` package is optional), and the
local copies of hub splits that replace it offline.

A local copy is a hub split in the dataset's own schema, one JSON object per line, at
`$L2D_DATA/<repo>/<config>/<split>.jsonl` (no `<config>` level for datasets without configs), e.g.
`$L2D_DATA/openai/gsm8k/main/test.jsonl`. Where there is network, one line writes it:
`datasets.load_dataset("openai/gsm8k", "main", split="test").to_json(".../openai/gsm8k/main/test.jsonl")`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from l2d.data.records import check_text

DATA_ENV = "L2D_DATA"


def local_copy_name(repo: str, config: str | None, split: str) -> str:
    """Where a split's copy lives under $L2D_DATA."""
    return "/".join(part for part in (repo, config, f"{split}.jsonl") if part)


def local_copy(repo: str, config: str | None, split: str) -> Path | None:
    """The local copy of a hub split under $L2D_DATA, or None when L2D_DATA is unset or has no such file."""
    root = os.environ.get(DATA_ENV)
    if not root:
        return None
    path = Path(root).expanduser() / local_copy_name(repo, config, split)
    return path if path.is_file() else None


def offline_fix(repo: str, config: str | None, split: str, option: str) -> str:
    """What to give instead of the hub: the source's own file option (e.g. "task.options.path=FILE"),
    or a copy under $L2D_DATA."""
    return (f"give a local copy of the split in the dataset's own schema (JSONL): {option}, "
            f"or ${DATA_ENV}/{local_copy_name(repo, config, split)}")


def load_hub_dataset(name: str, config: str | None, split: str, *, streaming: bool, offline_hint: str) -> Any:
    """`datasets.load_dataset(name, config, split=...)`, failing with one clear line when it cannot.

    The local copy under $L2D_DATA is read instead when there is one (through `datasets`' JSON
    loader, so a streamed copy shuffles like the hub's stream). `offline_hint` says what to use
    instead when neither is there.
    """
    try:
        from datasets import load_dataset
    except ImportError:
        raise ImportError(f"loading {name} from the hub needs the `datasets` package "
                          f"(pip install 'l2d[hub]'); {offline_hint}") from None
    local = local_copy(name, config, split)
    if local is not None:
        check_text(local)  # datasets' own error would name neither the file nor the line
        return load_dataset("json", data_files=str(local), split="train", streaming=streaming)
    try:
        return load_dataset(name, config, split=split, streaming=streaming)
    except (ConnectionError, OSError) as error:  # OSError covers offline mode and missing files on the hub
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectionError(f"could not load {name} ({config or 'default'}, {split}) from the Hugging Face hub: "
                              f"{reason}. {offline_hint}") from None
