"""kill -9 of a 2-process run (gloo on CPU, as a preempted SLURM job loses every task) under trainer=ddp and
trainer=fsdp, resumed into its own directory from last.ckpt: the later losses are an uninterrupted 2-process run's to
the bit, metrics.csv holds every step once, and the export (the whole diffusion path, gathered from shards under
fsdp) is the uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from l2d import L2DModel
from tests.training.conftest import logged
from tests.training.test_kill import logged_steps

STEPS = 10  # 52 training examples over 2 processes, 2 per micro-batch: 13 steps in the epoch


def train(directory: Path, data: Path, strategy: str, *overrides: str) -> subprocess.Popen:
    """A 2-process run in its own process group (killed whole, as a preempted job is)."""
    command = [sys.executable, "-m", "l2d.train", "~experiment", "model=tiny", "data=jsonl",
               f"data.sources.0.path={data}", "data.val_size=8", "batch_size=4", "data.micro_batch_size=2",
               f"trainer={strategy}", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true",
               f"trainer.max_steps={STEPS}",
               "trainer.val_check_interval=5", "callbacks.model_checkpoint.every_n_train_steps=2",
               "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
               f"hydra.run.dir={directory}", *overrides]
    return subprocess.Popen(command, cwd=directory.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def kill_job_once_logged(process: subprocess.Popen, metrics: Path, step: int, timeout_s: float = 900) -> None:
    """SIGKILL every process of the run as soon as the training loss of `step` is in metrics.csv (after the
    checkpoint of that step, with rows from it on that the resumed run logs again)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if step in logged_steps(metrics):
            assert process.poll() is None, "the run ended before it could be killed"
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"step {step} was never logged")


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr.decode()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_a_killed_two_process_run_resumes_exactly(tmp_path, strategy):
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{a} + {a % 7} =", "response": str(a + a % 7)}) + "\n"
                            for a in range(60)))
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    reference = train(reference_dir, data, strategy)  # uninterrupted, alongside the run that is killed
    killed = train(run_dir, data, strategy, "export=false")
    kill_job_once_logged(killed, run_dir / "metrics.csv", step=6)
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed_from = torch.load(last, weights_only=False)["global_step"]
    assert 2 <= resumed_from <= 7

    resumed = train(run_dir, data, strategy, f"ckpt_path={last}")
    finish(reference)
    finish(resumed)
    assert logged_steps(reference_dir / "metrics.csv") == list(range(STEPS))
    assert logged_steps(run_dir / "metrics.csv") == list(range(STEPS))  # every step once
    expected, got = logged(reference_dir / "metrics.csv", "train/loss"), logged(run_dir / "metrics.csv", "train/loss")
    print(f"\n{strategy}: resumed from step {resumed_from}\nstep  uninterrupted  killed and resumed")
    print("\n".join(f"{step:>4}  {expected[step]:.6f}      {got[step]:.6f}" for step in range(STEPS)))
    assert [got[step] for step in range(STEPS)] == [expected[step] for step in range(STEPS)]  # to the bit
    assert logged(run_dir / "metrics.csv", "val/loss") == logged(reference_dir / "metrics.csv", "val/loss")

    # The export is the whole path (it loads onto the base), and the uninterrupted run's.
    weights = load_file(run_dir / "export" / "diffusion_path.safetensors")
    reference_weights = load_file(reference_dir / "export" / "diffusion_path.safetensors")
    assert weights.keys() == reference_weights.keys()
    assert all(torch.equal(weights[name], reference_weights[name]) for name in weights)
    path = L2DModel.from_pretrained(run_dir / "export")
    assert {n: tuple(p.shape) for n, p in path.trainable_named_parameters()} == {
        n: tuple(w.shape) for n, w in weights.items()}
