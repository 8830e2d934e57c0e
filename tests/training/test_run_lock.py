"""One live run per directory: a second run into it is refused in one line naming the first, which goes on
unaffected; a run killed with kill -9 leaves nothing that blocks the next; without flock (some shared
filesystems), a lock file left by a dead process on this host is taken over, one from another host is not."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import l2d.run_lock
from l2d.run_lock import LOCK_FILE, RunDirectoryBusy, RunLock, hold
from l2d.train import train
from tests.training.conftest import logged

ROOT = Path(__file__).resolve().parents[2]
HOLDER = ("import sys, time; from l2d.run_lock import hold; hold(sys.argv[1], command='the first run'); "
          "print('held', flush=True); time.sleep(600)")


def holding_process(directory: Path) -> subprocess.Popen:
    """Another process that holds `directory`'s lock until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], cwd=ROOT, stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"held\n"
    return process


def test_a_second_run_is_refused_naming_the_first_and_a_killed_one_blocks_nothing(tiny_train, tmp_path):
    first = holding_process(tmp_path)
    try:
        with pytest.raises(RunDirectoryBusy, match=rf"{tmp_path} is in use by a running training "
                                                   rf"\(pid {first.pid} on {socket.gethostname()}, started .*: "
                                                   r"the first run\): wait for it"):
            train(tiny_train("trainer.max_steps=1"))
        assert sorted(path.name for path in tmp_path.iterdir()) == [LOCK_FILE]  # nothing of the refused run
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == first.pid  # left behind by kill -9 ...
    assert train(tiny_train("trainer.max_steps=1"))["global_step"] == 1  # ... and blocks nothing
    assert not (tmp_path / LOCK_FILE).exists()  # a run that ends removes its lock


def test_this_process_may_hold_its_directory_twice(tmp_path):
    """The Hydra callback takes the lock before train() does: train() goes on under it."""
    outer = hold(tmp_path)
    assert outer is not None and hold(tmp_path) is None
    outer.release()
    again = hold(tmp_path)
    again.release()


@pytest.fixture
def no_flock(monkeypatch):
    def refuse(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(l2d.run_lock.fcntl, "flock", refuse)


def lock_file(directory: Path, **holder) -> None:
    (directory / LOCK_FILE).write_text(json.dumps({"started": "earlier", "command": "python -m l2d.train", **holder}))


def test_without_flock_a_dead_process_lock_is_taken_over(no_flock, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file(tmp_path, pid=dead.pid, host=socket.gethostname())
    lock = RunLock(tmp_path)
    lock.acquire()
    assert not lock.flock and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_without_flock_a_live_or_foreign_lock_is_refused(no_flock, tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        lock_file(tmp_path, pid=live.pid, host=socket.gethostname(),
                  process_start=l2d.run_lock.process_start(live.pid))
        with pytest.raises(RunDirectoryBusy, match=rf"\(pid {live.pid} on {socket.gethostname()}, started earlier"):
            RunLock(tmp_path).acquire()
        lock_file(tmp_path, pid=live.pid, host=socket.gethostname(), process_start="0")  # its pid, reused
        RunLock(tmp_path).acquire()
    finally:
        live.kill()
        live.wait()
    lock_file(tmp_path, pid=1, host="another-node")  # cannot be checked from here
    with pytest.raises(RunDirectoryBusy,
                       match=rf"on another-node.*if that run has ended, delete {tmp_path}/{LOCK_FILE}"):
        RunLock(tmp_path).acquire()


STEPS = 48  # long enough that the second run starts up (imports) before the first ends
RUN = [sys.executable, "-m", "l2d.train", "~experiment", "model=tiny", "data.sources.0.size=80", "data.val_size=8",
       "batch_size=4", "data.micro_batch_size=2", f"trainer.max_steps={STEPS}", "trainer.enable_progress_bar=false",
       "trainer.enable_model_summary=false"]


@pytest.mark.slow
def test_two_trainings_into_one_directory(tmp_path):
    """The issue's double submit: the second `python -m l2d.train` ends in one line naming the first, which writes
    its whole record, its own .hydra/ files and its export as if alone."""
    run = tmp_path / "run"
    first = subprocess.Popen([*RUN, f"hydra.run.dir={run}", "seed=1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (run / LOCK_FILE).is_file() or not (run / ".hydra" / "overrides.yaml").is_file():
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    second = subprocess.run([*RUN, f"hydra.run.dir={run}", "seed=2"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert first.poll() is None, "the first run ended before the second was refused: give it more steps"
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [second.stderr.strip()]
    assert f"is in use by a running training (pid {first.pid} on {socket.gethostname()}" in second.stderr
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr.decode()[-2000:]
    assert sorted(logged(run / "metrics.csv", "train/loss")) == list(range(STEPS))  # every step once
    assert "seed=1" in (run / ".hydra" / "overrides.yaml").read_text()
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert json.loads((run / "export" / "l2d_config.json").read_text())["run"]["fingerprint"]["seed"] == 1
