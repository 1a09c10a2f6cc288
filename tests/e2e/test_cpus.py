"""`eg serve --server-cpus / --worker-cpus`: every thread of each process runs where it was
told, a restarted worker too; a list the machine cannot honour is a usage error."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.test_worker import wait_for_child
from tests.support.process import GatewayProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
        reason="needs Linux and two CPUs",
    ),
]


def allowed(pid: int) -> set[str]:
    """Each thread's Cpus_allowed_list."""
    found = set()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found.add(line.split(":", 1)[1].strip())
    return found


async def pinned(worker: int, cpu: int, timeout_s: float = 15.0) -> None:
    """Wait until every thread of ``worker`` runs on ``cpu`` alone: it pins itself first
    thing after its imports, before it starts any thread."""
    deadline = time.monotonic() + timeout_s
    while allowed(worker) != {str(cpu)}:
        assert time.monotonic() < deadline, f"the worker runs on {allowed(worker)}, not {cpu}"
        await asyncio.sleep(0.02)  # another process's start-up: no event to wait on


async def test_each_process_runs_on_its_cpus_and_a_restarted_worker_too(
    tmp_path: pathlib.Path,
) -> None:
    server_cpu, worker_cpu = sorted(os.sched_getaffinity(0))[:2]
    gateway = await asyncio.to_thread(
        GatewayProcess(
            tmp_path / "data", "--server-cpus", str(server_cpu), "--worker-cpus", str(worker_cpu)
        ).start
    )
    try:
        assert gateway.proc is not None
        worker = await wait_for_child(gateway.proc.pid)
        assert allowed(gateway.proc.pid) == {str(server_cpu)}
        await pinned(worker, worker_cpu)

        os.kill(worker, signal.SIGKILL)
        replacement = await wait_for_child(gateway.proc.pid, other_than=worker)
        await pinned(replacement, worker_cpu)
    finally:
        await asyncio.to_thread(gateway.stop)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worker-cpus", "4096"], "Invalid value for '--worker-cpus': CPU 4096 is not available"),
        (["--server-cpus", "a"], "Invalid value for '--server-cpus': 'a' is not a CPU list"),
        (
            ["--worker-cpus", "0", "--dispatch", "inline"],
            "--worker-cpus needs a delivery worker: --dispatch process or worker",
        ),
    ],
)
def test_a_list_the_machine_cannot_honour_is_a_usage_error(
    tmp_path: pathlib.Path, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eventgateway", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
