"""Run untrusted, model-written programs in isolated, resource-limited processes.

Each program runs in its own process, behind layers that each stop a sample on their own:
- OS: fresh network and PID namespaces (`unshare`); as root, an unprivileged uid (`setpriv`) that
  keeps only the capability to read files (the interpreter may live under /root), so RLIMIT_NPROC
  applies and files and processes outside the sandbox are out of reach; a session of its own,
  killed as a whole group; a fresh temporary cwd (also HOME and TMPDIR), removed afterwards;
  a minimal environment.
- In the child (`sandbox_child.py`): memory, CPU-time, process-count and file-size limits, and an
  audit hook refusing sockets, new processes, signals and writes outside the sandbox directory.
Missing OS tools (no `unshare`/`setpriv`, no namespaces) weaken only the first layer; a warning says so.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

CHILD_SCRIPT = str(Path(__file__).with_name("sandbox_child.py"))
UNPRIVILEGED_ID = 65534  # "nobody"
_NAMESPACES = ["--net", "--pid", "--fork", "--kill-child"]
_ROOT_NAMESPACES = ["unshare", *_NAMESPACES]
_USER_NAMESPACES = ["unshare", "--user", "--map-root-user", *_NAMESPACES]
_DROP_TO_NOBODY = ["setpriv", f"--reuid={UNPRIVILEGED_ID}", f"--regid={UNPRIVILEGED_ID}", "--clear-groups",
                   "--inh-caps=-all,+dac_read_search", "--ambient-caps=-all,+dac_read_search",
                   "--bounding-set=-all,+dac_read_search", "--no-new-privs"]
_DETAIL_CHARS = 2000


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. The wall-clock timeout includes interpreter start-up (~50 ms)."""

    timeout_s: float = 5.0
    memory_bytes: int = 1 << 30
    max_processes: int = 64
    max_file_bytes: int = 16 << 20

    @property
    def cpu_seconds(self) -> int:
        return math.ceil(self.timeout_s) + 1


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # "passed" | "failed" (raised, incl. SystemExit) | "timeout" | "error" (crashed, killed)
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Isolation:
    prefix: tuple[str, ...]
    drops_to_nobody: bool


@functools.cache
def isolation() -> Isolation:
    """The strongest OS isolation that works on this machine, probed once per process."""
    if os.geteuid() == 0:
        candidates = [Isolation((*_ROOT_NAMESPACES, *_DROP_TO_NOBODY), True),
                      Isolation(tuple(_DROP_TO_NOBODY), True), Isolation(tuple(_ROOT_NAMESPACES), False)]
    else:
        candidates = [Isolation(tuple(_USER_NAMESPACES), False)]
    for candidate in candidates:
        if _works(candidate.prefix):
            if candidate is not candidates[0]:
                log.warning("sandbox: using reduced OS isolation %s", " ".join(candidate.prefix))
            return candidate
    log.warning("sandbox: no namespaces or uid drop available; relying on in-process guards and limits")
    return Isolation((), False)


def _works(prefix: Sequence[str]) -> bool:
    if shutil.which(prefix[0]) is None:
        return False
    try:
        probe = subprocess.run([*prefix, sys.executable, "-I", "-c", "pass"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def run_program(program: str, limits: SandboxLimits = DEFAULT_LIMITS) -> ExecutionResult:
    """Execute one program; it passes if it runs to the end without raising."""
    workdir = tempfile.mkdtemp(prefix="l2d-sandbox-")
    try:
        if isolation().drops_to_nobody:
            os.chown(workdir, UNPRIVILEGED_ID, UNPRIVILEGED_ID)
        with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as verdict:
            return _execute(program, limits, workdir, output, verdict)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_programs(programs: Sequence[str], limits: SandboxLimits = DEFAULT_LIMITS,
                 max_workers: int | None = None) -> list[ExecutionResult]:
    """Execute programs in parallel (at most `max_workers`, default: CPU count capped at 8), in order."""
    workers = max(1, min(len(programs), max_workers or min(8, os.cpu_count() or 1)))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda program: run_program(program, limits), programs))


def _execute(program: str, limits: SandboxLimits, workdir: str, output: IO[bytes],
             verdict: IO[bytes]) -> ExecutionResult:
    nonce = secrets.token_hex(16)
    child_limits = {**asdict(limits), "cpu_seconds": limits.cpu_seconds}
    job = json.dumps({"program": program, "nonce": nonce, "verdict_fd": verdict.fileno(), "limits": child_limits})
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([*isolation().prefix, sys.executable, "-I", "-B", CHILD_SCRIPT],
                               stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                               pass_fds=(verdict.fileno(),), cwd=workdir, env=env, start_new_session=True)
    timed_out = False
    try:
        process.communicate(job.encode(), timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process)
    verdict.seek(0)
    said = verdict.read(128).decode(errors="replace")
    tail = _tail(output)
    if timed_out:
        return ExecutionResult("timeout", f"wall-clock timeout after {limits.timeout_s:g}s\n{tail}".strip())
    if said == f"{nonce}:passed":
        return ExecutionResult("passed", tail)
    if said == f"{nonce}:failed":
        return ExecutionResult("failed", tail)
    return ExecutionResult("error", f"no verdict (exit status {process.returncode})\n{tail}".strip())


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child's whole session group (stragglers included), then reap the child."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is already gone
        pass
    process.wait()


def _tail(output: IO[bytes]) -> str:
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - 4 * _DETAIL_CHARS))
    return output.read().decode(errors="replace").strip()[-_DETAIL_CHARS:]
