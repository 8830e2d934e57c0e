"""The command line: a 2-value multirun on the tiny model, and 2-process CPU DDP (slow)."""

import json
import subprocess
import sys

import pytest

from tests.training.conftest import SMALL_REASONING_GYM, TINY_RUN, logged


def run_cli(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "l2d.train", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_value_multirun_gives_two_runs_with_metrics(tmp_path):
    run_cli("-m", *TINY_RUN, SMALL_REASONING_GYM, "sigma=16,64", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in runs] == ["0", "1"]
    sigmas = [json.loads((run / "export" / "l2d_config.json").read_text())["config"]["sigma"] for run in runs]
    assert sigmas == [16.0, 64.0]
    for run in runs:
        assert logged(run / "metrics.csv", "train/loss")
        assert "val/loss" in json.loads((run / "metrics.json").read_text())


@pytest.mark.slow
def test_two_process_cpu_ddp(tmp_path):
    run_cli(*TINY_RUN, SMALL_REASONING_GYM, "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
            f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["global_step"] == 10  # 40 examples; each step: micro-batch 2 on each of 2 processes
    assert (tmp_path / "export" / "diffusion_path.safetensors").is_file()
