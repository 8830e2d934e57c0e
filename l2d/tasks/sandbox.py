"""Run untrusted, model-written programs in isolated, resource-limited processes.

Each program runs in its own process, behind walls that each stop a sample on their own:
- OS (bubblewrap, `bwrap`): a mount namespace in which the program sees only /usr, the interpreter
  and its standard library (read-only, at /python) and a fresh size-limited tmpfs at /tmp (its cwd,
  HOME and TMPDIR) — nothing of /root, /home, /etc or other users' files, none of this process's
  files; fresh PID, network, IPC and UTS namespaces, so no network, no other process in sight, and
  everything dies with the sandbox; as root, an unprivileged uid with no capabilities at all
  (`setpriv`), so file permissions and RLIMIT_NPROC apply. Programs running at the same time get
  different uids: the kernel counts RLIMIT_NPROC per uid, so a fork bomb cannot starve its neighbours.
- In the child (`sandbox_child.py`): memory, CPU-time, process-count and file-size limits, and an
  audit hook refusing sockets, new processes, signals and writes outside the sandbox directory.
Without a working `bwrap` (Debian: `apt-get install bubblewrap`) only the second wall remains, with
network and PID namespaces where `unshare` works: the program can then read every file this user
can. The sandbox says so once, and refuses to run programs unless the caller passes allow_weak=True.
Each result names the wall that stopped a program that did not pass (`ExecutionResult.limit`).
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import math
import os
import queue
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
UNPRIVILEGED_ID = 65534  # "nobody"
PYTHON_INSIDE = "/python"  # where the interpreter's prefix appears in the sandbox (unless it is under /usr)
WORKDIR_INSIDE = "/tmp"  # a fresh tmpfs: the program's cwd, HOME and TMPDIR
_NAMESPACES = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session"]
_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
_DETAIL_CHARS = 2000
# errno of the OSError that ended a program -> the wall it hit (ENOENT is "not visible" only for a
# path that exists outside the sandbox).
_WALL_OF_ERRNO = {errno.EAGAIN: "processes", errno.EFBIG: "file size", errno.ENOSPC: "disk",
                  errno.EROFS: "read-only", errno.EACCES: "permissions", errno.EPERM: "permissions",
                  errno.ENETUNREACH: "network", errno.ECONNREFUSED: "network"}


def _uid_pool(size: int = 16) -> queue.SimpleQueue[int]:
    """One uid per program running at once: "nobody", then the ids just below it (unassigned on
    common systems); a program waits for a free one when more than `size` run at once."""
    pool: queue.SimpleQueue[int] = queue.SimpleQueue()
    for uid in range(UNPRIVILEGED_ID, UNPRIVILEGED_ID - size, -1):
        pool.put(uid)
    return pool


_FREE_UIDS = _uid_pool()


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. The wall-clock timeout includes interpreter start-up (~50 ms)."""

    timeout_s: float = 5.0
    memory_bytes: int = 1 << 30
    max_processes: int = 64
    max_file_bytes: int = 16 << 20  # any one file, and the program's output
    disk_bytes: int = 64 << 20  # everything the program writes (the tmpfs at /tmp; with bwrap only)

    @property
    def cpu_seconds(self) -> int:
        return math.ceil(self.timeout_s) + 1


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # "passed" | "failed" (raised, incl. SystemExit) | "timeout" | "error" (crashed, killed)
    detail: str = ""  # what ended it when the sandbox knows, then the output's last _DETAIL_CHARS printable characters
    # The wall that stopped a program that did not pass, when one did: "timeout", "cpu", "memory",
    # "processes", "file size", "output", "disk", "audit hook", "not visible" (a path outside the
    # sandbox), "read-only", "permissions", "network", "leftover processes", "killed" (SIGKILL: CPU
    # hard limit or the kernel's out-of-memory killer); "" for an ordinary failure.
    limit: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class SandboxUnavailable(RuntimeError):
    """Only the weak sandbox works here, and the caller did not allow it."""


@dataclass(frozen=True)
class Isolation:
    """How programs are started: `namespaces`, then (bwrap) the sandbox directory, the drop to an unprivileged
    uid (as root), the interpreter."""

    namespaces: tuple[str, ...]
    drops_privileges: bool  # as root: setpriv to the program's own unprivileged uid, no capabilities
    python: str  # the interpreter's path as the program sees it
    strong: bool  # a mount namespace hides this machine's files
    why_weak: str = ""

    def command(self, limits: SandboxLimits, uid: int = UNPRIVILEGED_ID) -> list[str]:
        workdir = ["--size", str(limits.disk_bytes), "--perms", "1777", "--tmpfs", WORKDIR_INSIDE,
                   "--chdir", WORKDIR_INSIDE] if self.strong else []
        privileges = ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                      "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"] if self.drops_privileges else []
        return [*self.namespaces, *workdir, *privileges, self.python, "-I", "-B", "-c", child_source()]


@functools.cache
def child_source() -> str:
    return CHILD_SCRIPT.read_text()


def interpreter() -> tuple[Path, Path]:
    """(prefix, executable) of the base interpreter (a virtual environment's packages stay outside)."""
    executable = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    return Path(sys.base_prefix).resolve(), executable


def bwrap_isolation() -> Isolation:
    """bubblewrap's mount, PID, network, IPC and UTS namespaces; as root also an unprivileged uid, no capabilities."""
    prefix, executable = interpreter()
    args = ["bwrap", *_NAMESPACES, "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged-/usr links, or real directories
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev"]
    inside, python = prefix, executable
    if not prefix.is_relative_to("/usr") and executable.is_relative_to(prefix):  # e.g. under /root: shown alone
        inside, python = Path(PYTHON_INSIDE), Path(PYTHON_INSIDE) / executable.relative_to(prefix)
        args += ["--ro-bind", str(prefix), PYTHON_INSIDE, "--setenv", "LD_LIBRARY_PATH", f"{PYTHON_INSIDE}/lib"]
    for packages in site.getsitepackages([str(prefix)]):  # the standard library only: installed packages hidden
        if Path(packages).is_dir() and Path(packages).is_relative_to(prefix):
            args += ["--tmpfs", str(inside / Path(packages).relative_to(prefix))]
    if os.geteuid() != 0:
        args[1:1] = ["--unshare-user"]
    return Isolation(tuple(args), os.geteuid() == 0, str(python), strong=True)


@functools.cache
def isolation() -> Isolation:
    """The strongest isolation that works on this machine, probed once per process."""
    strong = bwrap_isolation()
    problem = _problem(strong) if shutil.which("bwrap") else "bwrap is not installed"
    if problem is None:
        return strong
    _, executable = interpreter()
    user_namespace = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
    unshare = Isolation((_UNSHARE[0], *user_namespace, *_UNSHARE[1:]), False, str(executable), strong=False,
                        why_weak=problem)
    weak = unshare if shutil.which("unshare") and _problem(unshare) is None else Isolation(
        (), False, str(executable), strong=False, why_weak=problem)
    log.warning("sandbox: %s, so sandboxed programs could read every file this user can; code tasks refuse "
                "to run unless sandbox.allow_weak=true (install bubblewrap: apt-get install bubblewrap)", problem)
    return weak


def _problem(candidate: Isolation) -> str | None:
    """None when the candidate starts the interpreter, else why not (one line)."""
    command = [*candidate.command(DEFAULT_LIMITS)[:-2], "-c", "import json"]
    try:
        probe = subprocess.run(command, capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                               env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{command[0]} does not start ({error})"
    if probe.returncode == 0:
        return None
    said = probe.stderr.decode(errors="replace").strip().splitlines()
    return f"{command[0]} fails here ({said[-1] if said else f'exit status {probe.returncode}'})"


def require_isolation(allow_weak: bool) -> Isolation:
    """The isolation programs will run under; refuses the weak one unless allowed."""
    found = isolation()
    if not found.strong and not allow_weak:
        raise SandboxUnavailable(
            f"the code sandbox needs bubblewrap: {found.why_weak}. Install it (apt-get install bubblewrap), "
            "or pass sandbox.allow_weak=true to run model-written programs that can read every file this user can")
    return found


def run_program(program: str, limits: SandboxLimits = DEFAULT_LIMITS, allow_weak: bool = False,
                audit_hook: bool = True) -> ExecutionResult:
    """Execute one program; it passes if it runs to the end without raising. `audit_hook=False`
    leaves the OS walls alone (tests use it to show that each holds by itself)."""
    found = require_isolation(allow_weak)
    workdir = None if found.strong else tempfile.mkdtemp(prefix="l2d-sandbox-")
    uid = _FREE_UIDS.get()
    try:
        with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as verdict:
            return _execute(program, limits, found, workdir, output, verdict, audit_hook, uid)
    finally:
        _FREE_UIDS.put(uid)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def run_programs(programs: Sequence[str], limits: SandboxLimits = DEFAULT_LIMITS, max_workers: int | None = None,
                 allow_weak: bool = False, audit_hook: bool = True) -> list[ExecutionResult]:
    """Execute programs in parallel (at most `max_workers`, default: CPU count capped at 8), in order."""
    require_isolation(allow_weak)  # probed once, before the threads
    workers = max(1, min(len(programs), max_workers or min(8, os.cpu_count() or 1)))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda program: run_program(program, limits, allow_weak, audit_hook), programs))


def _execute(program: str, limits: SandboxLimits, found: Isolation, workdir: str | None, output: IO[bytes],
             verdict: IO[bytes], audit_hook: bool, uid: int) -> ExecutionResult:
    nonce = secrets.token_hex(16)
    child_limits = {**asdict(limits), "cpu_seconds": limits.cpu_seconds}
    job = json.dumps({"program": program, "nonce": nonce, "verdict_fd": verdict.fileno(), "limits": child_limits,
                      "audit_hook": audit_hook, "pid_namespace": bool(found.namespaces)})
    home = workdir or WORKDIR_INSIDE
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen(found.command(limits, uid), stdin=subprocess.PIPE, stdout=output,
                               stderr=subprocess.STDOUT, pass_fds=(verdict.fileno(),), cwd=workdir, env=env,
                               start_new_session=True)
    timed_out = False
    try:
        process.communicate(job.encode(), timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process)
    verdict.seek(0)
    try:
        said = json.loads(verdict.read(4096))
    except (ValueError, UnicodeDecodeError):
        said = {}
    size = output.seek(0, os.SEEK_END)
    tail = _tail(output)
    if timed_out:
        return ExecutionResult("timeout", f"wall-clock timeout after {limits.timeout_s:g}s\n{tail}".strip(),
                               "timeout")
    if not isinstance(said, dict) or said.get("nonce") != nonce:
        stopped = _signal_wall(process.returncode)
        why = {"cpu": f"stopped at the CPU-time limit of {limits.cpu_seconds}s (SIGXCPU)",
               "killed": "killed by SIGKILL (the CPU-time hard limit or the kernel's out-of-memory killer)"}.get(
                   stopped, f"no verdict (exit status {process.returncode})")
        return ExecutionResult("error", f"{why}\n{tail}".strip(), stopped)
    if said.get("passed") is True:
        return ExecutionResult("passed", tail)
    if size >= limits.max_file_bytes:
        return ExecutionResult("failed", f"output stopped at the {limits.max_file_bytes}-byte limit\n{tail}", "output")
    return ExecutionResult("failed", tail, _wall(said, found.strong))


def _wall(said: dict, strong: bool) -> str:
    """The wall behind a failure the child reported (see sandbox_child.what_stopped)."""
    if said.get("leftover"):
        return "leftover processes"
    if said.get("refused"):
        return "audit hook"
    if "MemoryError" in said.get("exceptions", []):
        return "memory"
    code, filename = said.get("errno"), said.get("filename")
    if code == errno.ENOENT:
        return "not visible" if strong and isinstance(filename, str) and _outside(filename) else ""
    return _WALL_OF_ERRNO.get(code, "")


def _outside(path: str) -> bool:
    """Whether a path missing in the sandbox exists on this machine (or its directory does, away from
    the sandbox's own fresh directory, where a missing file is the program's own business)."""
    own = path == WORKDIR_INSIDE or path.startswith(WORKDIR_INSIDE + "/")
    return os.path.lexists(path) or (not own and os.path.lexists(os.path.dirname(path)))


def _signal_wall(returncode: int | None) -> str:
    """bwrap exits with 128 + the signal that killed its command; unshare and a bare child die by it (< 0)."""
    number = None if returncode is None else -returncode if returncode < 0 else returncode - 128
    return {signal.SIGXCPU: "cpu", signal.SIGKILL: "killed"}.get(number, "")


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child's whole session group, then reap it. With bwrap the sandbox's own
    processes die with it (--die-with-parent, and the PID namespace dies with its init)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is already gone
        pass
    process.wait()


def _tail(output: IO[bytes]) -> str:
    """The last _DETAIL_CHARS characters of the output, control characters replaced (\\n and \\t kept)."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - 4 * _DETAIL_CHARS))
    text = output.read().decode(errors="replace").strip()[-_DETAIL_CHARS:]
    return "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)
