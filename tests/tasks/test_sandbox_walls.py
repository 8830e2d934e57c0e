"""The programs an attacker would write, each run for real: with the audit hook (as code tasks run
them) and without it (the OS walls alone). Each must be contained, and say which wall stopped it."""

import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import pytest

from l2d.tasks import sandbox
from l2d.tasks.sandbox import Isolation, SandboxLimits, run_program, run_programs

pytestmark = pytest.mark.bwrap
LIMITS = SandboxLimits(timeout_s=8.0)  # room for a loaded machine; only "ignoring SIGTERM" waits it out
SURVIVOR = f"{secrets.randbelow(10**6)}.{secrets.randbelow(10**3)}"  # the sleep's argument marks it


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    """Secrets of this machine, as the test's user: a 0600 file in a 0700 directory, another user's
    home, a file to overwrite, and a secret in this process's environment."""
    root = tmp_path_factory.mktemp("machine")
    vault = root / "vault"
    vault.mkdir(mode=0o700)
    token = vault / "token"
    token.write_text(f"TOKEN-{secrets.token_hex(8)}")
    token.chmod(0o600)
    home = root / "home" / "alice"
    home.mkdir(parents=True)
    netrc = home / ".netrc"
    netrc.write_text(f"machine example.com password ALICE-{secrets.token_hex(8)}")
    netrc.chmod(0o600)
    home.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(home, 1000, 1000)
        shutil.chown(netrc, 1000, 1000)
    sentinel = root / "sentinel.txt"
    sentinel.write_text("keep me")
    environment_secret = f"ENV-{secrets.token_hex(8)}"
    os.environ["L2D_TEST_SECRET"] = environment_secret
    yield {"token": token, "netrc": netrc, "home": home, "sentinel": sentinel, "environ": environment_secret}
    del os.environ["L2D_TEST_SECRET"]


def programs(machine) -> dict[str, tuple[str, tuple[str, str], tuple[str, str]]]:
    """name -> (program, (status, wall) with the audit hook, (status, wall) without it)."""
    token, netrc, home, sentinel = (str(machine[k]) for k in ("token", "netrc", "home", "sentinel"))
    not_visible = ("failed", "not visible")
    return {
        "a 0600 file in a 0700 directory": (f"print(open({token!r}).read())", not_visible, not_visible),
        "another user's home": (f"import os\nprint(os.listdir({home!r}))\nprint(open({netrc!r}).read())",
                                not_visible, not_visible),
        "/home": ("import os\nprint(os.listdir('/home'))", not_visible, not_visible),
        "the parent's environment": ("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())",
                                     ("failed", "permissions"), ("failed", "permissions")),
        "listing /root": ("import os\nprint(os.listdir('/root'))", not_visible, not_visible),
        "a symlink to a secret": (f"import os\nos.symlink({token!r}, 'link')\nprint(open('link').read())",
                                  not_visible, not_visible),
        "overwriting a file outside": (f"open({sentinel!r}, 'w').write('gone')", not_visible, not_visible),
        "writing into /usr": ("open('/usr/planted', 'w').write('x')", ("failed", "audit hook"),
                              ("failed", "read-only")),
        "writing into /": ("open('/planted', 'w').write('x')", ("failed", "audit hook"), ("failed", "permissions")),
        "writing into / through a directory fd": (
            "import os\nfd = os.open('/', os.O_RDONLY)\nos.open('planted', os.O_WRONLY | os.O_CREAT, dir_fd=fd)",
            ("failed", "audit hook"), ("failed", "permissions")),
        "setsid + sleep outliving the program": (
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
            f"    os.execv('/bin/sleep', ['sleep', '{SURVIVOR}'])\ntime.sleep(0.5)",
            ("failed", "audit hook"), ("failed", "leftover processes")),
        "fork loop": ("import os\nwhile True:\n    os.fork()", ("failed", "audit hook"), ("failed", "processes")),
        "20 GB allocation": ("x = bytearray(20 << 30)", ("failed", "memory"), ("failed", "memory")),
        "1 GB of output": ("import sys\nfor _ in range(1024):\n    sys.stdout.write('x' * (1 << 20))",
                           ("failed", "output"), ("failed", "output")),
        "filling the disk": ("for i in range(100):\n    open(f'f{i}', 'wb').write(bytes(8 << 20))",
                             ("failed", "disk"), ("failed", "disk")),
        "ignoring SIGTERM": ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)",
                             ("timeout", "timeout"), ("timeout", "timeout")),
        "network": ("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
                    ("failed", "audit hook"), ("failed", "network")),
    }


def survivors() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if SURVIVOR in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(entry.name)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("audit_hook", [True, False], ids=["with audit hook", "OS walls alone"])
def test_each_adversarial_program_is_contained_and_names_its_wall(machine, audit_hook):
    table = programs(machine)
    started = time.monotonic()
    results = run_programs([program for program, _, _ in table.values()], LIMITS, max_workers=2, audit_hook=audit_hook)
    for (name, (_, hooked, alone)), result in zip(table.items(), results, strict=True):
        assert (result.status, result.limit) == (hooked if audit_hook else alone), f"{name}: {result}"
        for secret in (machine["token"].read_text(), machine["netrc"].read_text(), machine["environ"]):
            assert secret not in result.detail, name
        assert len(result.detail) <= 2100
    assert machine["sentinel"].read_text() == "keep me"
    assert not Path("/usr/planted").exists() and not Path("/planted").exists()
    assert survivors() == []
    assert time.monotonic() - started < 60


@pytest.mark.skipif(os.geteuid() != 0, reason="as another user, programs run as that user, who has other processes")
def test_a_program_holding_every_process_it_may_have_does_not_starve_one_running_beside_it():
    """RLIMIT_NPROC counts per uid, so two programs sharing one would share its 64 processes."""
    hoarder = ("import os, time\nchildren = []\ntry:\n    while True:\n        pid = os.fork()\n"
               "        if pid == 0:\n            time.sleep(4)\n            os._exit(0)\n"
               "        children.append(pid)\nexcept BlockingIOError:\n    pass\n"
               "assert len(children) > 50, len(children)\n[os.waitpid(pid, 0) for pid in children]\n")
    neighbour = ("import os, time\ntime.sleep(1.5)\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n"
                 "os.waitpid(pid, 0)\n")
    hoarded, forked = run_programs([hoarder, neighbour], LIMITS, max_workers=2, audit_hook=False)
    assert hoarded.passed, hoarded
    assert forked.passed, forked


def test_cpu_time_is_limited_for_threads_that_outrun_the_clock():
    class OneCpuSecond(SandboxLimits):
        @property
        def cpu_seconds(self) -> int:
            return 1

    program = ("import hashlib, threading\ndata = bytes(32 << 20)\n"
               "def spin():\n    while True:\n        hashlib.sha256(data).digest()\n"  # releases the GIL
               "threads = [threading.Thread(target=spin) for _ in range(4)]\n"
               "[t.start() for t in threads]\n[t.join() for t in threads]\n")
    result = run_program(program, OneCpuSecond(timeout_s=30.0), audit_hook=False)
    assert (result.status, result.limit) == ("error", "cpu"), result
    assert "CPU-time limit of 1s" in result.detail


def test_the_audit_hook_alone_resolves_directory_fds(tmp_path, monkeypatch):
    """The second wall without the first (no bubblewrap): a path relative to a directory fd is judged where it
    leads, whichever os.open makes it, and writing through a directory fd inside the sandbox still works."""
    monkeypatch.setattr(sandbox, "isolation", lambda: Isolation((), False, sys.executable, strong=False))
    outside = str(tmp_path)
    fresh_posix = "importlib.util.module_from_spec(importlib.util.find_spec('posix'))"  # its own, unwrapped os.open
    attacks = {
        "/proc/self/comm": "fd = os.open('/proc/self', os.O_RDONLY)\nos.open('comm', os.O_WRONLY, dir_fd=fd)",
        "a directory outside": f"fd = os.open({outside!r}, os.O_RDONLY)\n"
                               "os.open('planted', os.O_WRONLY | os.O_CREAT, dir_fd=fd)",
        "a fresh posix module": f"import importlib.util\nposix = {fresh_posix}\nfd = posix.open({outside!r}, 0)\n"
                                "posix.open('planted', os.O_WRONLY | os.O_CREAT, dir_fd=fd)",
        "a fifo": f"fd = os.open({outside!r}, os.O_RDONLY)\nos.mkfifo('fifo', dir_fd=fd)",
        "an opener": f"fd = os.open({outside!r}, os.O_RDONLY)\n"
                     "open('planted', 'w', opener=lambda path, flags: os.open(path, flags, dir_fd=fd))",
    }
    results = run_programs([f"import os\n{program}" for program in attacks.values()], LIMITS, max_workers=2,
                           allow_weak=True)
    for name, result in zip(attacks, results, strict=True):
        assert (result.status, result.limit) == ("failed", "audit hook"), f"{name}: {result}"
        assert "Refused" in result.detail, name
    assert list(tmp_path.iterdir()) == []
    inside = ("import os, shutil, tempfile\nos.mkdir('d')\nfd = os.open('d', os.O_RDONLY)\n"
              "os.write(os.open('f', os.O_WRONLY | os.O_CREAT, dir_fd=fd), b'x')\nos.mkfifo('p', dir_fd=fd)\n"
              "assert sorted(os.listdir('d')) == ['f', 'p']\nos.makedirs('d/e/f')\nshutil.rmtree('d')\n"
              "with tempfile.TemporaryDirectory(dir='.') as t:\n    open(os.path.join(t, 'x'), 'w').write('y')\n"
              "assert os.listdir('.') == []\n")
    assert run_program(inside, LIMITS, allow_weak=True).passed
