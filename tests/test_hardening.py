"""Process hardening (``hardening.py``): real processes, read by another process of the same
non-root user, as a handler would (both switch to uid 65534 when the tests run as root)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

SRC = str(pathlib.Path(__file__).resolve().parents[1] / "src")
# Root reads any /proc file: test as nobody. The switch happens inside each process, after
# its imports (nobody may not read this checkout), and a uid change clears "dumpable", so
# the target sets it back first, as the exec of a fresh `eg serve` would have.
BECOME_NOBODY = "import os\nif os.geteuid() == 0: os.setuid(65534)\n"
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4

TARGET = f"""
import ctypes, sys
from eventgateway.hardening import forbid_inspection
libc = ctypes.CDLL(None)
{BECOME_NOBODY}
libc.prctl({PR_SET_DUMPABLE}, 1, 0, 0, 0)
forbid_inspection()
print(libc.prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0), flush=True)
sys.stdin.read()
"""


def read_environ_as_same_user(dumpable: str | None) -> tuple[str, subprocess.CompletedProcess[str]]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": SRC, "SECRET_OF_THE_GATEWAY": "s3cret"}
    if dumpable is not None:
        env["EG_DUMPABLE"] = dumpable
    target = subprocess.Popen(
        [sys.executable, "-S", "-c", TARGET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert target.stdout is not None
        state = target.stdout.readline().strip()
        reader = subprocess.run(
            [
                sys.executable,
                "-S",
                "-c",
                f"{BECOME_NOBODY}print(open('/proc/{target.pid}/environ').read())",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        target.kill()
        target.communicate()
    return state, reader


def test_a_same_user_process_cannot_read_the_gateways_environment():
    state, reader = read_environ_as_same_user(None)

    assert state == "0"
    assert reader.returncode != 0
    assert "PermissionError" in reader.stderr
    assert "s3cret" not in reader.stdout


def test_eg_dumpable_keeps_it_readable():
    state, reader = read_environ_as_same_user("1")

    assert state == "1"
    assert "s3cret" in reader.stdout


def test_a_child_it_executes_is_dumpable_again():
    script = (
        "import subprocess, sys\n"
        "from eventgateway.hardening import forbid_inspection\n"
        "assert forbid_inspection()\n"
        "child = 'import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))'\n"
        "subprocess.run([sys.executable, '-c', child], check=True)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env, timeout=30
    )

    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr
