"""Runs inside the sandboxed process: limit it, guard it, execute one program, report a verdict.

Started by `l2d.tasks.sandbox` as `python -I -B -c <this file's text>`; reads its job as JSON from
stdin ({"program", "nonce", "verdict_fd", "limits", "audit_hook", "pid_namespace"}). Standard library
only, no l2d imports: inside the sandbox nothing but the interpreter and its standard library exists.

The verdict is one JSON object {"nonce", "passed", ...what stopped the program}, written to an
inherited fd only after the program returned or raised. A program that leaves early (sys.exit,
os._exit, a signal) never writes "passed", so it cannot count as passing. The nonce arrives on stdin
(closed before the program runs), so it is not in argv, the environment or any file.
"""

from __future__ import annotations

import errno
import json
import os
import posix
import resource
import sys
import traceback

# Audit events refused outright: network, new processes, signals and raising the limits set below.
# (ctypes and _posixsubprocess, ways around these guards, are refused at import, in `guard`.)
_REFUSED_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
    "resource.setrlimit", "resource.prlimit",
})
_REFUSED_PREFIXES = ("socket.",)
# Audit events that change the file system, allowed only inside the sandbox directory:
# event -> ((index of a path argument, index of its dir_fd argument or None), ...).
_FILE_EVENTS = {
    "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),), "os.truncate": ((0, None),),
    "os.rename": ((0, 2), (1, 3)), "os.link": ((0, 2), (1, 3)), "os.symlink": ((1, 2),),
    "os.chmod": ((0, 2),), "os.chown": ((0, 3),), "os.chflags": ((0, None),), "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),), "os.removexattr": ((0, None),),
    "shutil.rmtree": ((0, 1),), "shutil.move": ((0, None), (1, None)),
    "os.mkfifo": ((0, 2),), "os.mknod": ((0, 3),),  # raised by `resolving_calls` (CPython audits neither)
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class Refused(PermissionError):
    """The audit hook refused an operation."""


class RefusedImport(ImportError):
    """The audit hook refused a module (an ImportError lets `try: import ctypes` fall back)."""


def set_limits(limits: dict) -> None:
    """Soft = hard, so the program cannot raise them again; CPU time alone gets one second more hard
    than soft, so its end shows as SIGXCPU (as PID 1 of a PID namespace, where SIGXCPU is ignored,
    the hard limit's SIGKILL still ends it)."""
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_NPROC", limits["max_processes"]),
                        ("RLIMIT_FSIZE", limits["max_file_bytes"]), ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1))


def install_guard(workdir: str) -> None:
    """An audit hook cannot be removed, unlike reliability_guard's `os.remove = None`. Best effort:
    the OS layer (namespaces, unprivileged uid, limits) is the boundary, this is a second wall."""
    root = os.path.realpath(workdir)

    def inside(path, dir_fd) -> bool:
        if isinstance(path, int):  # an fd: where it points is unknown here
            return False
        base = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd not in (None, -1) else os.getcwd()
        real = os.path.realpath(os.path.join(base, os.fsdecode(path)))
        return real in (root, os.devnull) or real.startswith(root + os.sep)

    def guard(event: str, args: tuple) -> None:
        if event in _REFUSED_EVENTS or event.startswith(_REFUSED_PREFIXES):
            raise Refused(f"{event} is not allowed in the sandbox")
        if event == "ctypes.dlopen" or (event == "import" and args[0] == "_posixsubprocess"):
            # _posixsubprocess forks without an audit event
            raise RefusedImport("ctypes and subprocess are not allowed in the sandbox")
        if event == "open" and args[1] is None and not os.path.isabs(os.fsdecode(args[0])):
            # os.open's event has no dir_fd, so a relative path may lead anywhere; the os.open of
            # `resolving_calls` passes absolute paths only, so this is an os.open found past it
            raise Refused(f"os.open of the relative path {args[0]!r} is not allowed in the sandbox")
        if event == "open" and not isinstance(args[0], int) and args[2] & _WRITE_FLAGS:
            targets = ((0, None),)
        else:
            targets = _FILE_EVENTS.get(event, ())
        for path_index, dir_fd_index in targets:
            dir_fd = args[dir_fd_index] if dir_fd_index is not None and dir_fd_index < len(args) else None
            if not inside(args[path_index], dir_fd):
                raise Refused(f"{event} on {args[path_index]!r} outside the sandbox directory is not allowed")

    resolving_calls()
    sys.addaudithook(guard)


def absolute(path, dir_fd) -> str:
    """`path` as the kernel resolves it: against the directory of `dir_fd` (read from /proc/self/fd), else
    against the working directory."""
    path = os.fsdecode(path)
    if os.path.isabs(path):  # the kernel ignores dir_fd
        return path
    if dir_fd is None:
        return os.path.join(os.getcwd(), path)
    try:
        return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd:d}"), path)
    except (OSError, ValueError, TypeError):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF), path) from None


def resolving_calls() -> None:
    """os.open's audit event carries no dir_fd, and os.mkfifo and os.mknod raise none: replaced (in os and
    posix) by versions that call the originals with absolute paths and raise events the guard checks, so
    `os.open('comm', os.O_WRONLY, dir_fd=<fd of /proc/self>)` is judged as /proc/<pid>/comm."""
    original_open, original_mkfifo, original_mknod = posix.open, posix.mkfifo, posix.mknod

    def open_absolute(path, flags, mode=0o777, *, dir_fd=None):
        return original_open(absolute(path, dir_fd), flags, mode)

    def mkfifo_audited(path, mode=0o666, *, dir_fd=None):
        sys.audit("os.mkfifo", path, mode, -1 if dir_fd is None else dir_fd)
        return original_mkfifo(absolute(path, dir_fd), mode)

    def mknod_audited(path, mode=0o600, device=0, *, dir_fd=None):
        sys.audit("os.mknod", path, mode, device, -1 if dir_fd is None else dir_fd)
        return original_mknod(absolute(path, dir_fd), mode, device)

    for original, replacement in ((original_open, open_absolute), (original_mkfifo, mkfifo_audited),
                                  (original_mknod, mknod_audited)):
        for module in (os, posix):
            setattr(module, original.__name__, replacement)
        if original in os.supports_dir_fd:  # shutil.rmtree asks it whether fd-based removal works
            os.supports_dir_fd.discard(original)
            os.supports_dir_fd.add(replacement)


def what_stopped(error: BaseException) -> dict:
    """Facts about a failure for the parent to name the wall that stopped it: the exceptions (with
    their context), whether the audit hook refused, and the errno and resolved file of an OSError."""
    chain, seen = [], error
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    facts = {"exceptions": [type(e).__name__ for e in chain],
             "refused": any(isinstance(e, (Refused, RefusedImport)) for e in chain)}
    os_error = next((e for e in chain if isinstance(e, OSError) and e.errno is not None), None)
    if os_error is not None:
        facts["errno"] = os_error.errno
        if isinstance(os_error.filename, (str, bytes)):  # resolved: a symlink names where it points
            facts["filename"] = os.path.realpath(os.fsdecode(os_error.filename))[:512]
    return facts


def other_processes() -> int:
    """Processes still alive in this PID namespace besides its init (PID 1) and this one."""
    return sum(name.isdigit() and int(name) not in (1, os.getpid()) for name in os.listdir("/proc"))


def main() -> None:
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    os.close(0)  # the job (and its nonce) cannot be read again
    verdict_fd, nonce = job["verdict_fd"], job["nonce"]
    set_limits(job["limits"])
    if job["audit_hook"]:
        install_guard(os.getcwd())
    # __name__ is not "__main__", so a demo block under `if __name__ == "__main__":` does not run.
    namespace = {"__name__": "__sandboxed__", "__builtins__": __builtins__}
    me, error = os.getpid(), None
    try:
        exec(compile(job.pop("program"), "program.py", "exec", dont_inherit=True), namespace)
    except BaseException as raised:  # SystemExit included: leaving before the tests finish is a failure
        error = raised
    if os.getpid() != me:  # a child the program forked (possible only without the audit hook) says nothing
        os._exit(1)
    verdict = {"nonce": nonce, "passed": error is None}
    if error is not None:
        verdict.update(what_stopped(error))
    elif job["pid_namespace"] and (left := other_processes()):
        verdict.update(passed=False, leftover=left)  # they die with the namespace; a clean run leaves none
    os.write(verdict_fd, json.dumps(verdict).encode())
    try:  # the report is best effort: output may have hit the file-size limit
        if error is not None:
            traceback.print_exception(type(error), error, error.__traceback__.tb_next)  # without this frame
        elif "leftover" in verdict:
            print(f"{verdict['leftover']} process(es) left running after the program ended", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(0)  # skip atexit handlers and non-daemon threads the program may have left behind


if __name__ == "__main__":
    main()
