"""Worker processes reaped by the runtime itself, and the peak memory the kernel keeps for them."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys

import pytest

from eventgateway.runtime.child import Child, child_peak_kib, own_peak_kib

HOG = (
    "import os, sys\n"
    "hog = bytearray(int(sys.argv[1]) * 1024 * 1024)\n"
    "for offset in range(0, len(hog), 4096): hog[offset] = 1\n"
    "os._exit(7)\n"
)


async def start(*args: str) -> Child:
    argv = [sys.executable, "-S", *args]
    return await Child.start(argv, env={}, cwd=pathlib.Path.cwd(), pass_fds=())


def is_our_child(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def mb_above_this_process() -> int:
    """A size no figure carried over from this process (the "gateway") can reach."""
    return max(300, own_peak_kib() // 1024 + 64)


@pytest.mark.parametrize(
    ("maxrss_kib", "spawner_kib", "peak"),
    [
        (400_000, 100_000, 400_000),  # above the spawner: only the child can have used it
        (100_000, 100_000, None),  # the spawner's own figure, carried over through exec
        (90_000, 100_000, None),
    ],
)
def test_the_kernels_figure_counts_only_above_the_spawners_peak(maxrss_kib, spawner_kib, peak):
    assert child_peak_kib(maxrss_kib, spawner_kib) == peak


async def test_a_child_that_dies_on_its_own_keeps_its_peak():
    mb = mb_above_this_process()
    child = await start("-c", HOG, str(mb))

    assert child.peak_rss_kib is None  # not before it is reaped
    assert await asyncio.wait_for(child.wait(), 30) == 7
    child.close()

    assert child.peak_rss_kib is not None
    assert child.peak_rss_kib >= mb * 1024


async def test_a_small_child_of_a_big_gateway_does_not_report_the_gateways_memory():
    # Linux carries the spawner's peak over into the child's ru_maxrss: a tiny child of
    # this (bigger) process "used" this process's memory. That figure must not be kept.
    child = await start("-c", "import os; os._exit(0)")

    assert await asyncio.wait_for(child.wait(), 30) == 0
    child.close()

    assert child.peak_rss_kib is None


async def test_the_child_is_reaped_by_us_and_a_signal_is_a_negative_code():
    child = await start("-c", "import time; time.sleep(60)")
    os.killpg(child.pid, signal.SIGKILL)

    assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    child.close()
    assert not is_our_child(child.pid)  # reaped: no zombie left behind


async def test_output_is_read_from_its_pipes():
    child = await start("-c", "import sys; print('out'); print('err', file=sys.stderr)")

    assert await asyncio.wait_for(child.stdout.read(), 30) == b"out\n"
    assert await asyncio.wait_for(child.stderr.read(), 30) == b"err\n"
    assert await asyncio.wait_for(child.wait(), 30) == 0
    child.close()


async def test_a_missing_executable_is_an_os_error():
    with pytest.raises(FileNotFoundError):
        await Child.start(["/nonexistent/eg-worker"], env={}, cwd=pathlib.Path.cwd(), pass_fds=())
