"""The one place that talks to the Hugging Face hub (the `datasets` package is optional), and the
local copies of hub splits that replace it offline.

A local copy is a hub split in the dataset's own schema, one JSON object per line, at
`$L2D_DATA/<repo>/<config>/<split>.jsonl` (no `<config>` level for datasets without configs), e.g.
`$L2D_DATA/openai/gsm8k/main/test.jsonl`. Where there is network, one line writes it:
`datasets.load_dataset("openai/gsm8k", "main", split="test").to_json(".../openai/gsm8k/main/test.jsonl")`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l2d.data.records import check_text, read_jsonl

DATA_ENV = "L2D_DATA"


class HubUnavailable(ConnectionError):
    """A hub split could not be loaded (no `datasets`, offline, a withdrawn repo); the message says what to give
    instead."""


@dataclass(frozen=True)
class HubSplit:
    repo: str
    config: str | None
    split: str
    revision: str | None = None

    def __str__(self) -> str:
        config = f", config {self.config}" if self.config else ""
        revision = f", revision {self.revision}" if self.revision else ""
        return f"{self.repo} (split {self.split}{config}{revision})"


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


def load_hub(source: HubSplit, fix: str, streaming: bool = False) -> Any:
    """The rows of a hub split, from its local copy under $L2D_DATA when there is one: read whole (each line
    checked, `read_jsonl`) or, streamed, through `datasets`' JSON loader, so that a streamed copy shuffles like the
    hub's stream. Else `datasets.load_dataset`; any failure (no `datasets`, offline, a withdrawn repo) is one
    HubUnavailable line naming the split and `fix`, what to give instead."""
    local = local_copy(source.repo, source.config, source.split)
    if local is not None and not streaming:
        return [record for _, record in read_jsonl(local)]
    try:
        from datasets import load_dataset
    except ImportError:
        raise HubUnavailable(f"loading {source} from the Hugging Face hub needs the `datasets` package "
                             f"(pip install 'l2d[hub]'); or {fix}") from None
    if local is not None:
        check_text(local)  # datasets' own error would name neither the file nor the line
        return load_dataset("json", data_files=str(local), split="train", streaming=True)
    try:
        return load_dataset(source.repo, source.config, split=source.split, revision=source.revision,
                            streaming=streaming)
    except Exception as error:  # the hub raises many types (ConnectionError, HfHubHTTPError, OSError offline, ...)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HubUnavailable(f"could not load {source} from the Hugging Face hub ({reason}). Offline? Then "
                             f"{fix}") from None
