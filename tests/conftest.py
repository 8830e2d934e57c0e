"""Shared fixtures, and the GPU and bubblewrap markers."""

from __future__ import annotations

import os

import pytest
import torch

from l2d.model.loading import CACHE_ENV
from l2d.tasks.sandbox import isolation
from tests.tiny import FAMILY_CONFIGS

# Set by .ci/run, which installs bubblewrap: a test marked `bwrap` then fails where the sandbox does not
# work instead of skipping. pytest has no switch that fails on skips of one kind (and CI skips others:
# GPU tests, the GSM8K copy), so the marker's own check reads this.
REQUIRE_BWRAP_ENV = "L2D_REQUIRE_BWRAP"


@pytest.fixture(autouse=True, scope="session")
def gguf_cache(tmp_path_factory):
    """The slow tests de-quantize SmolLM2's GGUF once per session, into a temporary cache rather than the
    user's; subprocesses inherit it."""
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("l2d_cache"))
    yield
    if previous is None:
        os.environ.pop(CACHE_ENV)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(params=sorted(FAMILY_CONFIGS))
def family(request) -> str:
    return request.param


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    """A test marked `bwrap` runs model-written code in the bubblewrap sandbox, which refuses to run without it."""
    if item.get_closest_marker("bwrap") is None or isolation().strong:
        return
    reason = f"needs the bubblewrap code sandbox (apt-get install bubblewrap): {isolation().why_weak}"
    if os.environ.get(REQUIRE_BWRAP_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_BWRAP_ENV}=1 requires it", pytrace=False)
    pytest.skip(reason)
