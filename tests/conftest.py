"""Shared fixtures and the GPU marker."""

from __future__ import annotations

import os

import pytest
import torch

from l2d.model.loading import CACHE_ENV
from tests.tiny import FAMILY_CONFIGS


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
