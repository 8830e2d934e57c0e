"""Adversarial samples must fail without harming the machine, and the harness must carry on."""

import os
import sys
import time

import pytest

from l2d.tasks import sandbox
from l2d.tasks.sandbox import Isolation, SandboxLimits, SandboxUnavailable, isolation, run_program, run_programs

LIMITS = SandboxLimits(timeout_s=3.0)
PASSING = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n"


def test_a_correct_program_passes():
    result = run_program(PASSING, LIMITS, allow_weak=True)
    assert result.passed and result.status == "passed" and result.limit == ""


def test_a_failing_assert_fails_with_its_traceback():
    result = run_program("assert 1 + 1 == 3, 'arithmetic'", LIMITS, allow_weak=True)
    assert result.status == "failed" and "AssertionError: arithmetic" in result.detail and result.limit == ""


def test_adversarial_samples_fail_and_the_harness_carries_on(tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    adversarial = {
        "infinite loop": ("while True:\n    pass", "timeout"),
        "fork bomb": ("import os\nwhile True:\n    os.fork()", "failed"),
        "subprocess": ("import subprocess\nsubprocess.run(['true'])", "failed"),
        "huge allocation": ("x = bytearray(1 << 40)", "failed"),
        "list allocation": ("x = [0] * (1 << 31)", "failed"),
        "delete file": (f"import os\nos.remove({str(sentinel)!r})", "failed"),
        "delete tree": (f"import shutil\nshutil.rmtree({str(tmp_path)!r})", "failed"),
        "overwrite file": (f"open({str(sentinel)!r}, 'w').write('gone')", "failed"),
        "delete via dir_fd": (f"import os\nos.unlink('sentinel.txt', dir_fd=os.open({str(tmp_path)!r}, os.O_RDONLY))",
                              "failed"),
        "socket": ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)", "failed"),
        "raw socket": ("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)", "failed"),
        "exit before asserts": ("import sys\nsys.exit(0)\nassert False", "failed"),
        "hard exit before asserts": ("import os\nos._exit(0)\nassert False", "error"),
        "kill parent": ("import os\nos.kill(os.getppid(), 9)", "failed"),
        "kill group": ("import os, signal\nos.killpg(0, signal.SIGKILL)", "failed"),
        "ctypes": ("import ctypes\nctypes.CDLL(None).fork()", "failed"),
    }
    started = time.monotonic()
    results = run_programs([code for code, _ in adversarial.values()] + [PASSING], LIMITS, max_workers=2,
                           allow_weak=True)
    for (name, (_, status)), result in zip(adversarial.items(), results, strict=False):
        assert not result.passed, name
        assert result.status == status, f"{name}: {result.status} {result.detail}"
    assert results[-1].passed  # the harness is still working after all of the above
    assert sentinel.read_text() == "keep me"
    assert time.monotonic() - started < 30


def test_child_runs_limited_without_privileges_in_a_fresh_directory(monkeypatch):
    monkeypatch.setenv("L2D_TEST_SECRET", "do not leak")
    program = (
        "import os, resource, tempfile\n"
        f"assert resource.getrlimit(resource.RLIMIT_NPROC) == ({LIMITS.max_processes}, {LIMITS.max_processes})\n"
        f"assert resource.getrlimit(resource.RLIMIT_AS) == ({LIMITS.memory_bytes}, {LIMITS.memory_bytes})\n"
        f"assert resource.getrlimit(resource.RLIMIT_CPU)[0] == {LIMITS.cpu_seconds}\n"
        "assert 'L2D_TEST_SECRET' not in os.environ\n"
        "assert os.environ['HOME'] == os.getcwd() == tempfile.gettempdir()\n"
        "assert os.listdir('.') == [], os.listdir('.')\n"  # nothing left by an earlier program
        "open('scratch.txt', 'w').write('writing inside the sandbox is fine')\n"
        "caps = [line.split()[1] for line in open('/proc/self/status') if line.startswith('Cap')]\n"
        "print('UID=' + str(os.getuid()), 'CAPS=' + ','.join(caps))\n"
    )
    first, second = run_programs([program, program], LIMITS, max_workers=1, allow_weak=True)
    assert first.passed and second.passed, first.detail + second.detail
    if isolation().strong:
        assert "CAPS=" + ",".join(["0000000000000000"] * 5) in first.detail  # no capability at all
        assert ("UID=0" not in first.detail) if os.geteuid() == 0 else f"UID={os.geteuid()}" in first.detail


def test_output_keeps_a_bounded_printable_tail():
    result = run_program("print('\\x1b[2J\\x00\\x07 start')\nprint('y' * 100_000)\nprint('end')", LIMITS,
                         allow_weak=True)
    assert result.passed and len(result.detail) == sandbox._DETAIL_CHARS and result.detail.endswith("y\nend")
    started = run_program("print('\\x1b[31mred\\x00\\x07\\r')", LIMITS, allow_weak=True).detail
    assert started == "\ufffd[31mred\ufffd\ufffd" and all(c.isprintable() or c in "\n\t" for c in started)


@pytest.mark.bwrap
def test_no_network_even_without_the_socket_guard():
    program = ("lines = open('/proc/self/net/dev').read().splitlines()[2:]\n"
               "print([line.split(':')[0].strip() for line in lines])")
    result = run_program(program, LIMITS, audit_hook=False)
    assert result.passed and result.detail == "['lo']"


def test_a_timeout_is_reported_promptly():
    started = time.monotonic()
    result = run_program("import time\ntime.sleep(60)", SandboxLimits(timeout_s=1.0), allow_weak=True)
    assert (result.status, result.limit) == ("timeout", "timeout")
    assert time.monotonic() - started < 5


def test_results_keep_the_order_of_the_programs():
    programs = [f"assert {i} % 2 == 0" for i in range(6)]
    assert [r.passed for r in run_programs(programs, LIMITS, max_workers=3, allow_weak=True)] == [True, False] * 3


WEAK = Isolation((), False, sys.executable, strong=False, why_weak="bwrap is not installed")


def test_without_bubblewrap_programs_are_refused_unless_weak_is_allowed(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation", lambda: WEAK)
    with pytest.raises(SandboxUnavailable, match=r"bwrap is not installed.*sandbox\.allow_weak=true"):
        run_program(PASSING, LIMITS)
    with pytest.raises(SandboxUnavailable):
        run_programs([PASSING], LIMITS)
    assert run_program(PASSING, LIMITS, allow_weak=True).passed


def test_a_missing_bwrap_is_found_and_said_once(monkeypatch, caplog):
    real_which = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    found = sandbox.isolation.__wrapped__()  # the probe itself, not the cached answer
    assert not found.strong and found.why_weak == "bwrap is not installed"
    assert [r.getMessage() for r in caplog.records if "allow_weak" in r.getMessage()] == [
        "sandbox: bwrap is not installed, so sandboxed programs could read every file this user can; code tasks "
        "refuse to run unless sandbox.allow_weak=true (install bubblewrap: apt-get install bubblewrap)"]
