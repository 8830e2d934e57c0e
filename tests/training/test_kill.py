"""kill -9 of a real training process: the last checkpoint is whole, and resuming from it gives the
uninterrupted run's losses step for step, to the bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.conftest import logged

STEPS = 24
RUN = [sys.executable, "-m", "l2d.train", "~experiment", "model=tiny", "data.sources.0.size=40", "data.val_size=8",
       "batch_size=4", "data.micro_batch_size=2", f"trainer.max_steps={STEPS}",
       "callbacks.model_checkpoint.every_n_train_steps=2", "trainer.enable_progress_bar=false",
       "trainer.enable_model_summary=false", "export=false"]


def train(directory: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([*RUN, f"hydra.run.dir={directory}", *overrides], cwd=directory.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_after_second_checkpoint(process: subprocess.Popen, checkpoints: Path, timeout_s: float = 600) -> None:
    """SIGKILL the moment a checkpoint of step >= 4 appears, which is while last.ckpt is being written
    (ModelCheckpoint writes the step file first): one checkpoint is whole, the next may be half-done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(int(path.stem.removeprefix("step")) >= 4 for path in checkpoints.glob("step*.ckpt")):
            assert process.poll() is None, "the run ended before it could be killed"
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.005)
    process.kill()
    raise AssertionError("no second checkpoint appeared")


@pytest.mark.slow
def test_kill_9_leaves_a_whole_checkpoint_and_resuming_reproduces_the_losses(tmp_path):
    reference_dir, killed_dir, resumed_dir = tmp_path / "reference", tmp_path / "killed", tmp_path / "resumed"
    reference = train(reference_dir)  # uninterrupted, alongside the run that is killed
    killed = train(killed_dir)
    kill_after_second_checkpoint(killed, killed_dir / "checkpoints")
    assert killed.returncode == -signal.SIGKILL

    saved = sorted(path for path in (killed_dir / "checkpoints").iterdir() if not path.name.startswith("."))
    assert saved and all(path.suffix == ".ckpt" for path in saved)  # half-written files stay hidden
    for path in saved:  # every visible checkpoint loads whole
        checkpoint = torch.load(path, weights_only=False)
        assert checkpoint["state_dict"] and checkpoint["optimizer_states"] and checkpoint["global_step"] >= 2
    last = killed_dir / "checkpoints" / "last.ckpt"
    resumed_from = torch.load(last, weights_only=False)["global_step"]
    assert 2 <= resumed_from < STEPS

    resumed = train(resumed_dir, f"ckpt_path={last}")
    for process in (reference, resumed):
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr.decode()[-2000:]
    expected = logged(reference_dir / "metrics.csv", "train/loss")
    got = logged(resumed_dir / "metrics.csv", "train/loss")
    assert sorted(expected) == list(range(STEPS))
    assert sorted(got) == list(range(resumed_from, STEPS))  # continues at the next step, not from 0
    print(f"\nresumed from step {resumed_from}\nstep  uninterrupted  resumed")
    print("\n".join(f"{step:>4}  {expected[step]:.6f}      {got[step]:.6f}" for step in sorted(got)))
    assert [got[step] for step in sorted(got)] == [expected[step] for step in sorted(got)]  # to the bit
