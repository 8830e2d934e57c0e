"""A first run a newcomer can read: a tiny training and an evaluation of its export print no warning that
its user could do nothing about."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

TRAIN = ["l2d.train", "~experiment", "model=tiny", "data.sources.0.size=40", "data.val_size=8", "batch_size=4",
         "data.micro_batch_size=2", "trainer.max_steps=4"]
EVALUATE = ["l2d.evaluate", "model=tiny", "task=arithmetic", "limit=2", "batch_size=2", "max_new_tokens=4",
            "progress=false"]
# What they printed before: Lightning's advert, its warning about the frozen base in eval mode, its warning that
# the run directory (which always holds Hydra's files) is not empty, and torch's deprecation inside Lightning.
NOISE = ["litlogger", "in eval mode", "exists and is not empty", "will be deleted", "LeafSpec"]
LIBRARY_WARNING = re.compile(r"-packages/\S+\.py:\d+: ")  # where the warnings module names a library's line


def stderr_of(*arguments: str, cwd) -> str:
    ran = subprocess.run([sys.executable, "-m", *arguments], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return ran.stderr


@pytest.mark.slow
@pytest.mark.parametrize("method", ["l2d_lora", "lora"])
def test_a_tiny_training_and_its_evaluation_print_no_warnings(tmp_path, method):
    run = tmp_path / "run"
    printed = {"train": stderr_of(*TRAIN, f"method={method}", f"hydra.run.dir={run}", cwd=tmp_path),
               "evaluate": stderr_of(*EVALUATE, f"checkpoint={run / 'export'}", f"hydra.run.dir={tmp_path / 'eval'}",
                                     cwd=tmp_path)}
    for command, stderr in printed.items():
        print(f"--- {command} stderr\n{stderr}")
        assert not [noise for noise in NOISE if noise in stderr], command
        assert not LIBRARY_WARNING.search(stderr), command
