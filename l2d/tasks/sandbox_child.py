"""Runs inside the sandboxed process: limit it, guard it, execute one program, report a verdict.

Started by `l2d.tasks.sandbox` as `python -I -B sandbox_child.py`; reads its job as JSON from stdin
({"program", "nonce", "verdict_fd", "limits"}). Standard library only, no l2d imports, so it runs
under `python -I` from any working directory.

The verdict is "<nonce>:passed" or "<nonce>:failed", written to an inherited fd only after the
program returned or raised. A program that leaves early (sys.exit, os._exit, a signal) never
writes "passed", so it cannot count as passing. The nonce arrives on stdin (closed before the
program runs), so it is not in argv, the environment or any file.
"""

from __future__ import annotations

import json
import os
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
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def set_limits(limits: dict) -> None:
    """Soft = hard, so the program cannot raise them again (and as PID 1 of a PID namespace the
    soft-limit signal SIGXCPU would be ignored; the hard limit's SIGKILL is not)."""
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_CPU", limits["cpu_seconds"]),
                        ("RLIMIT_NPROC", limits["max_processes"]), ("RLIMIT_FSIZE", limits["max_file_bytes"]),
                        ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))


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
            raise PermissionError(f"{event} is not allowed in the sandbox")
        if event == "ctypes.dlopen" or (event == "import" and args[0] == "_posixsubprocess"):
            # ImportError lets `try: import ctypes` fall back; _posixsubprocess forks unaudited
            raise ImportError("ctypes and subprocess are not allowed in the sandbox")
        if event == "open" and not isinstance(args[0], int) and args[2] & _WRITE_FLAGS:
            targets = ((0, None),)
        else:
            targets = _FILE_EVENTS.get(event, ())
        for path_index, dir_fd_index in targets:
            dir_fd = args[dir_fd_index] if dir_fd_index is not None and dir_fd_index < len(args) else None
            if not inside(args[path_index], dir_fd):
                raise PermissionError(f"{event} on {args[path_index]!r} outside the sandbox directory is not allowed")

    sys.addaudithook(guard)


def main() -> None:
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    verdict_fd, nonce = job["verdict_fd"], job["nonce"]
    set_limits(job["limits"])
    install_guard(os.getcwd())
    # __name__ is not "__main__", so a demo block under `if __name__ == "__main__":` does not run.
    namespace = {"__name__": "__sandboxed__", "__builtins__": __builtins__}
    error = None
    try:
        exec(compile(job.pop("program"), "program.py", "exec", dont_inherit=True), namespace)
    except BaseException as raised:  # SystemExit included: leaving before the tests finish is a failure
        error = raised
    os.write(verdict_fd, f"{nonce}:{'passed' if error is None else 'failed'}".encode())
    try:  # the report is best effort: output may have hit the file-size limit
        if error is not None:
            traceback.print_exception(type(error), error, error.__traceback__.tb_next)  # without this frame
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(0)  # skip atexit handlers and non-daemon threads the program may have left behind


if __name__ == "__main__":
    main()
