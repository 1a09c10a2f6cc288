"""One gateway per data dir: the lock, its messages, and that exit releases it."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from eventgateway.data_dir import DataDirLock
from eventgateway.errors import ConfigError

_HOLD = """
import pathlib, sys
from eventgateway.data_dir import DataDirLock
lock = DataDirLock.acquire(pathlib.Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_lock_on_the_same_dir_is_refused_until_the_first_is_released(
    tmp_path: pathlib.Path,
):
    first = DataDirLock.acquire(tmp_path / "data")

    with pytest.raises(
        ConfigError, match=re.escape(f"in use by another gateway (pid {os.getpid()})")
    ):
        DataDirLock.acquire(tmp_path / "data")

    first.release()
    first.release()  # a second release does nothing
    DataDirLock.acquire(tmp_path / "data").release()


def test_the_lock_creates_missing_directories(tmp_path: pathlib.Path):
    lock = DataDirLock.acquire(tmp_path / "a" / "b")

    assert (tmp_path / "a" / "b" / "gateway.lock").is_file()
    lock.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: pathlib.Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"):
            DataDirLock.acquire(tmp_path)
    finally:
        holder.kill()
        holder.communicate(timeout=10)  # also closes the pipes

    DataDirLock.acquire(tmp_path).release()


def test_a_file_in_place_of_the_data_dir_is_a_config_error_naming_it(tmp_path: pathlib.Path):
    (tmp_path / "data").write_text("")

    with pytest.raises(ConfigError, match=r"'.*/data' is a file, not a directory"):
        DataDirLock.acquire(tmp_path / "data")


def test_a_data_dir_that_cannot_be_created_is_a_config_error_naming_it(tmp_path: pathlib.Path):
    (tmp_path / "file").write_text("")

    with pytest.raises(
        ConfigError, match=r"cannot use the data dir '.*/file/data': Not a directory"
    ):
        DataDirLock.acquire(tmp_path / "file" / "data")


def test_a_new_data_dir_is_private_to_its_user(tmp_path: pathlib.Path, caplog):
    # QA: made 0755 under umask 022, with its stores 0644: every local user could read
    # functions' AWS keys, signing secrets and environment values from gateway.db.
    DataDirLock.acquire(tmp_path / "data").release()

    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert not [r for r in caplog.records if "other users" in r.getMessage()]


def test_an_existing_data_dir_others_may_enter_is_warned_about(tmp_path: pathlib.Path, caplog):
    (tmp_path / "data").mkdir(mode=0o755)
    (tmp_path / "data").chmod(0o755)

    DataDirLock.acquire(tmp_path / "data").release()

    (warning,) = [r for r in caplog.records if "other users" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert f"chmod 700 {tmp_path / 'data'}" in warning.getMessage()


_HOLD_WITH_WORKER = """
import pathlib, subprocess, sys
from eventgateway.data_dir import DataDirLock
lock = DataDirLock.acquire(pathlib.Path(sys.argv[1]))
worker = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                          stdin=subprocess.PIPE, pass_fds=(lock.fd,))  # inherits the lock
print(worker.pid, flush=True)
sys.stdin.read()
"""


def _state(pid: int) -> bytes:
    return pathlib.Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0]


def test_a_killed_gateway_not_yet_reaped_is_named_as_stopped(tmp_path: pathlib.Path):
    # QA: after `kill -9` of `eg serve` from a shell, the refusal named the dead pid as "another
    # gateway": it was a zombie (signals still reach one), and its delivery worker held the lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WITH_WORKER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    worker_pid = int(holder.stdout.readline())
    try:
        holder.kill()
        deadline = time.monotonic() + 10
        while _state(holder.pid) != b"Z":  # the kill is asynchronous: it flips in microseconds
            assert time.monotonic() < deadline, "the killed holder never became a zombie"
            os.sched_yield()

        with pytest.raises(
            ConfigError,
            match=re.escape(f"the delivery worker of a gateway that stopped (pid {holder.pid})"),
        ):
            DataDirLock.acquire(tmp_path)
    finally:
        os.kill(worker_pid, 9)
        holder.communicate(timeout=10)
