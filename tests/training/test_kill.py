"""kill -9 of a real training process: the last checkpoint is whole, resuming from it gives the
uninterrupted run's losses step for step, to the bit, and resuming into the same directory keeps the
run's whole record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from l2d.lightning.loggers import read_record
from l2d.report.inputs import read_run
from l2d.report.rows import run_labels
from tests.entry_points.test_first_run import LIBRARY_WARNING
from tests.training.conftest import logged

STEPS = 24
RUN = [sys.executable, "-m", "l2d.train", "~experiment", "model=tiny", "data.sources.0.size=40", "data.val_size=8",
       "batch_size=4", "data.micro_batch_size=2", f"trainer.max_steps={STEPS}",
       "callbacks.model_checkpoint.every_n_train_steps=2", "trainer.enable_progress_bar=false",
       "trainer.enable_model_summary=false", "export=false"]


def train(directory: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([*RUN, f"hydra.run.dir={directory}", *overrides], cwd=directory.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(process: subprocess.Popen, ready, what: str, timeout_s: float = 600) -> None:
    """SIGKILL the process the moment `ready()` holds, polling every 5 ms; fail if it ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            assert process.poll() is None, "the run ended before it could be killed"
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.005)
    process.kill()
    raise AssertionError(f"{what} never happened")


def kill_after_second_checkpoint(process: subprocess.Popen, checkpoints: Path) -> None:
    """SIGKILL the moment a checkpoint of step >= 4 appears, which is while last.ckpt is being written
    (ModelCheckpoint writes the step file first): one checkpoint is whole, the next may be half-done."""
    kill_when(process, lambda: any(int(path.stem.removeprefix("step")) >= 4 for path in checkpoints.glob("step*.ckpt")),
              "a second checkpoint")


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


def logged_steps(metrics: Path) -> list[int]:
    """The step of every row with a training loss, in file order (a step logged twice shows twice)."""
    return [int(row["step"]) for row in read_record(metrics)[1] if row.get("train/loss")] if metrics.is_file() else []


def kill_once_logged(process: subprocess.Popen, metrics: Path, step: int) -> None:
    """SIGKILL as soon as the training loss of `step` is in metrics.csv: after the checkpoint of that step,
    with rows from that step on that the resumed run logs again. (Not between saving a checkpoint and logging
    the step before it, which Lightning does in that order: a kill there loses that one row.)"""
    kill_when(process, lambda: step in logged_steps(metrics), f"the logging of step {step}")


@pytest.mark.slow
def test_resumed_into_its_own_directory_a_killed_run_keeps_its_whole_record(tmp_path):
    """As experiments/smollm2_short_answers/run.sh resumes: ckpt_path=<run>/checkpoints/last.ckpt into the same
    hydra.run.dir. metrics.csv then holds every step once, the uninterrupted run's values, and the report
    reads it as one run. Validation (every 10 steps) first logs after the kill, so the resumed run widens the
    header of the file it continues."""
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    every_10 = "trainer.val_check_interval=10"
    reference = train(reference_dir, every_10)
    killed = train(run_dir, every_10)
    kill_once_logged(killed, run_dir / "metrics.csv", step=4)
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed_from = torch.load(last, weights_only=False)["global_step"]
    before = logged_steps(run_dir / "metrics.csv")
    assert before[:5] == list(range(5)) and before[-1] >= resumed_from - 1  # (= resumed_from: logged again)

    resumed = train(run_dir, every_10, f"ckpt_path={last}")
    for process in (reference, resumed):
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr.decode()[-2000:]
    assert not LIBRARY_WARNING.search(stderr.decode()), stderr.decode()  # the resumed run's: nothing to act on
    # Each step once: a resumed run that kept the killed run's rows from the checkpoint on, or restarted from
    # step 0, would show steps twice; one that lost the killed run's record would start at the checkpoint.
    assert logged_steps(reference_dir / "metrics.csv") == list(range(STEPS))
    assert logged_steps(run_dir / "metrics.csv") == list(range(STEPS))
    expected, got = logged(reference_dir / "metrics.csv", "train/loss"), logged(run_dir / "metrics.csv", "train/loss")
    print(f"\nkilled at step {before[-1]}, resumed from step {resumed_from}\nstep  uninterrupted  killed and resumed")
    print("\n".join(f"{step:>4}  {expected[step]:.6f}      {got[step]:.6f}" for step in range(STEPS)))
    assert [got[step] for step in range(STEPS)] == [expected[step] for step in range(STEPS)]  # to the bit

    # As the report reads it: every column the uninterrupted run logged, value for value, in the same order
    # (throughput is wall-clock: only its count has to match).
    whole, uninterrupted = read_run(run_dir), read_run(reference_dir)
    assert whole.columns.keys() == uninterrupted.columns.keys() and "val/loss" in whole.columns
    bins = [name for name in uninterrupted.columns if name.startswith("train/loss_t_bin")]
    for name, values in uninterrupted.columns.items():
        if name not in bins:
            assert len(whole.columns[name]) == len(values), name
            assert name.endswith("tokens_per_s") or whole.columns[name] == values, name
    # A t-bin that no token fell in at some step is logged there by Lightning with its value of the step before
    # (an on_step value stays until the epoch ends); the resumed run has no step before its first.
    for name in bins:
        ours, theirs = logged(run_dir / "metrics.csv", name), logged(reference_dir / "metrics.csv", name)
        assert all(theirs[step] == value for step, value in ours.items()), name
        assert all(theirs[step] == theirs[step - 1] for step in theirs.keys() - ours.keys()), name
    assert not any("ckpt_path" in label for label in run_labels([whole, uninterrupted]).values())
