"""Data files committed under tests/fixtures/ (each in its dataset's own schema, licence beside it),
and local copies of hub splits laid out as $L2D_DATA expects them."""

from __future__ import annotations

import json
from pathlib import Path

from l2d.data.hub import local_copy_name

FIXTURES = Path(__file__).parent / "fixtures"
GSM8K_20 = FIXTURES / "gsm8k" / "train_first20.jsonl"  # the first 20 problems of GSM8K train, MIT licence


def gsm8k_problems() -> list[dict]:
    return [json.loads(line) for line in GSM8K_20.read_text().splitlines()]


def write_local_copy(root: Path, repo: str, config: str | None, split: str, records: list[dict]) -> Path:
    """A hub split's copy under `root` (what $L2D_DATA points at)."""
    path = root / local_copy_name(repo, config, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path
