"""Compose the real config tree for in-process runs on the tiny model."""

from __future__ import annotations

import pytest

from tests.compose import compose_config

# The framework's bare defaults (no experiment preset), on the tiny model.
TINY_RUN = ["~experiment", "model=tiny", "data.val_size=8", "batch_size=4", "data.micro_batch_size=2",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
SMALL_REASONING_GYM = "data.sources.0.size=16"


@pytest.fixture
def tiny_train(tmp_path):
    """compose the training config on the tiny model, writing into tmp_path."""
    def make(*overrides: str, output_dir=None):
        data = [] if any(o.startswith("data=") for o in overrides) else [SMALL_REASONING_GYM]
        return compose_config("train", TINY_RUN + data + list(overrides), output_dir or tmp_path)
    return make


def logged(path, column: str) -> dict[int, float]:
    """{step: value} of one column of a CSVLogger metrics.csv (rows without it skipped)."""
    import csv

    with open(path) as handle:
        return {int(row["step"]): float(row[column]) for row in csv.DictReader(handle) if row.get(column)}


def columns(path) -> set[str]:
    with open(path) as handle:
        return set(handle.readline().strip().split(","))
