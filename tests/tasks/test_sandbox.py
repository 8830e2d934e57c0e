"""Adversarial samples must fail without harming the machine, and the harness must carry on."""

import os
import time
from pathlib import Path

import pytest

from l2d.tasks.sandbox import SandboxLimits, isolation, run_program, run_programs

LIMITS = SandboxLimits(timeout_s=3.0)
PASSING = "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n"


def test_a_correct_program_passes():
    result = run_program(PASSING, LIMITS)
    assert result.passed and result.status == "passed"


def test_a_failing_assert_fails_with_its_traceback():
    result = run_program("assert 1 + 1 == 3, 'arithmetic'", LIMITS)
    assert result.status == "failed" and "AssertionError: arithmetic" in result.detail


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
    results = run_programs([code for code, _ in adversarial.values()] + [PASSING], LIMITS, max_workers=2)
    for (name, (_, status)), result in zip(adversarial.items(), results, strict=False):
        assert not result.passed, name
        assert result.status == status, f"{name}: {result.status} {result.detail}"
    assert results[-1].passed  # the harness is still working after all of the above
    assert sentinel.read_text() == "keep me"
    assert time.monotonic() - started < 30


def test_child_runs_limited_isolated_and_in_a_fresh_directory(monkeypatch):
    monkeypatch.setenv("L2D_TEST_SECRET", "do not leak")
    program = (
        "import os, resource, tempfile\n"
        f"assert resource.getrlimit(resource.RLIMIT_NPROC) == ({LIMITS.max_processes}, {LIMITS.max_processes})\n"
        f"assert resource.getrlimit(resource.RLIMIT_AS) == ({LIMITS.memory_bytes}, {LIMITS.memory_bytes})\n"
        f"assert resource.getrlimit(resource.RLIMIT_CPU)[1] == {LIMITS.cpu_seconds}\n"
        "assert 'L2D_TEST_SECRET' not in os.environ\n"
        "assert os.environ['HOME'] == os.getcwd() == tempfile.gettempdir()\n"
        "open('scratch.txt', 'w').write('writing inside the sandbox is fine')\n"
        "os.remove('scratch.txt')\n"
        "print('CWD=' + os.getcwd(), 'UID=' + str(os.getuid()))\n"
    )
    result = run_program(program, LIMITS)
    assert result.passed, result.detail
    cwd = result.detail.split("CWD=")[1].split()[0]
    assert not Path(cwd).exists()  # removed afterwards
    if os.geteuid() == 0 and isolation().drops_to_nobody:
        assert "UID=0" not in result.detail


@pytest.mark.skipif(not isolation().prefix or "unshare" not in isolation().prefix, reason="no network namespace")
def test_no_network_even_without_the_socket_guard():
    program = ("lines = open('/proc/self/net/dev').read().splitlines()[2:]\n"
               "print([line.split(':')[0].strip() for line in lines])")
    result = run_program(program, LIMITS)
    assert result.passed and result.detail == "['lo']"


def test_a_timeout_is_reported_promptly():
    started = time.monotonic()
    result = run_program("import time\ntime.sleep(60)", SandboxLimits(timeout_s=1.0))
    assert result.status == "timeout"
    assert time.monotonic() - started < 5


def test_results_keep_the_order_of_the_programs():
    programs = [f"assert {i} % 2 == 0" for i in range(6)]
    assert [r.passed for r in run_programs(programs, LIMITS, max_workers=3)] == [True, False] * 3
