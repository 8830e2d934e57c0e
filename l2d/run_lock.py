"""One live run per directory: a training holds `run.lock` in its run directory while it runs, and a second one
started into the same directory is refused in one line that names the first (pid, host, start, command).

The lock is the kernel's (flock): it goes with the process that holds it, so a run killed with kill -9, or
whose machine died, leaves nothing that blocks the next. Where the filesystem does not do flock (some shared
filesystems refuse it), the file itself is the lock, created exclusively; one left by a dead process on this host
is taken over (its pid is gone, or now another process), and one left on another host, whose process cannot be
checked from here, is refused with the line that says to delete it once that run has ended.

`python -m l2d.train` takes the lock before Hydra writes the run's files (`.hydra/`, a Hydra callback), so a
refused run changes nothing in the directory; `train()` takes it too (tests, multirun jobs), and under DDP only
rank 0 holds it: the other ranks are launched into the same directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback

LOCK_FILE = "run.lock"
NO_FLOCK = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # as Lightning reads a process's rank


class RunDirectoryBusy(RuntimeError):
    """Another live run holds the directory; the message names it."""


def process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, /proc/<pid>/stat field 22), which tells a process from
    a later one given the same pid; None where /proc does not say."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(holder: dict) -> bool:
    """Whether the process a lock file names still runs (on this host)."""
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except (KeyError, TypeError, ValueError):
        return False
    recorded = holder.get("process_start")
    return recorded is None or recorded == process_start(int(holder["pid"]))


class RunLock:
    """`with RunLock(directory):` holds the directory for this process or raises RunDirectoryBusy."""

    def __init__(self, directory, command: str | None = None) -> None:
        self.path = Path(directory) / LOCK_FILE
        self.command = command or " ".join([Path(sys.executable).name, *sys.argv])
        self.handle: int | None = None
        self.flock = True

    def holder(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "process_start": process_start(os.getpid()),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": self.command}

    def busy(self, holder: dict | None, stale_hint: bool = False) -> RunDirectoryBusy:
        if not holder:
            who = "another run (it has not written its details yet)"
        else:
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
                   f"{holder.get('command')}")
        hint = (f"; if that run has ended, delete {self.path} (this filesystem has no flock, so a run killed on "
                "another host leaves it)") if stale_hint else ""
        return RunDirectoryBusy(f"{self.path.parent} is in use by a running training ({who}): wait for it to end, "
                                f"or train into another directory (hydra.run.dir=DIR){hint}")

    def read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                raise self.busy(self.read()) from None
            except OSError as error:
                os.close(handle)
                if error.errno not in NO_FLOCK:
                    raise
                self.flock = False
                self.acquire_exclusively()
                return
            # The file may have been removed by the run that held it, between our open and our lock: then we
            # hold a lock on a file no one else sees, and must take the one now at the path.
            try:
                same = os.path.samestat(os.fstat(handle), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self.handle = handle
                self.write(handle)
                return
            os.close(handle)

    def acquire_exclusively(self) -> None:
        """Without flock: the file is the lock. One whose process is gone (on this host) is stale and replaced."""
        while True:
            try:
                handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                holder = self.read()
                if holder is None or holder.get("host") != socket.gethostname():
                    raise self.busy(holder, stale_hint=True) from None
                if alive(holder):
                    raise self.busy(holder) from None
                try:
                    os.unlink(self.path)  # stale: its process is gone
                except FileNotFoundError:
                    pass
                continue
            self.handle = handle
            self.write(handle)
            return

    def write(self, handle: int) -> None:
        os.ftruncate(handle, 0)
        os.pwrite(handle, (json.dumps(self.holder()) + "\n").encode(), 0)

    def release(self) -> None:
        if self.handle is None:
            return
        try:
            os.unlink(self.path)  # while still held, so no one locks the file on its way out
        except FileNotFoundError:
            pass
        os.close(self.handle)
        self.handle = None
        HELD.discard(self.path.resolve())


HELD: set[Path] = set()  # the lock files this process holds


def hold(directory, command: str | None = None) -> RunLock | None:
    """Hold `directory` for this process: the lock to release, or None when this process holds it already (the
    outer holder releases it). Raises RunDirectoryBusy when another live run holds it."""
    lock = RunLock(directory, command)
    if lock.path.resolve() in HELD:
        return None
    lock.acquire()
    HELD.add(lock.path.resolve())
    return lock


def rank() -> int:
    return next((int(os.environ[name]) for name in RANK_VARIABLES if name in os.environ), 0)


class HoldRunDirectory(Callback):
    """Hydra callback (train.yaml): the run's lock, taken before Hydra writes into the run directory. A refused
    run ends with the one line, as l2d.validation.one_line ends other user errors."""

    def __init__(self) -> None:
        self.lock: RunLock | None = None

    def on_run_start(self, config, **kwargs) -> None:
        if rank() > 0:
            return
        try:
            self.lock = hold(config.hydra.run.dir)
        except RunDirectoryBusy as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    def on_run_end(self, config, **kwargs) -> None:
        if self.lock is not None:
            self.lock.release()
