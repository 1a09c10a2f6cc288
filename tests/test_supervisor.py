"""The delivery worker's supervisor (``supervisor.py``): restart delays, and restarts that
fail to start a process. The child here is a stand-in that sleeps until killed."""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator, Callable

import pytest

from eventgateway.dispatch.restarting import Backoff
from eventgateway.providers.targets import TargetPolicy
from eventgateway.supervisor import WorkerProcess

DEADLINE_S = 10.0
HEALTHY_S = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StandIn(WorkerProcess):
    """Runs a sleeping child instead of the worker; records each restart's delay (and
    restarts at once), and fails to start the child while ``failing`` is above zero."""

    def __init__(self, tmp_path: pathlib.Path, **kw: object) -> None:
        super().__init__(tmp_path / "w.sock", targets=TargetPolicy(), **kw)  # type: ignore[arg-type]
        self.delays: list[float] = []
        self.failing = 0

    def _command(self) -> list[str]:
        if self.failing:
            self.failing -= 1
            return ["/nonexistent/eventgateway-worker"]
        return [sys.executable, "-c", "import time; time.sleep(600)"]

    async def _restart(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        await super()._restart(0.0)


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


async def crash(worker: WorkerProcess) -> None:
    """Kill the child, and wait until the supervisor started the next one."""
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until(lambda: worker.pid != pid, "the worker was not restarted")


@pytest.fixture
async def supervised(tmp_path: pathlib.Path) -> AsyncIterator[Callable[..., StandIn]]:
    made: list[StandIn] = []

    def make(**kw: object) -> StandIn:
        made.append(StandIn(tmp_path, **kw))
        return made[-1]

    yield make
    for worker in made:
        await worker.stop(timeout_s=5)


async def test_the_restart_delay_grows_and_starts_over_after_a_healthy_run(
    supervised: Callable[..., StandIn],
) -> None:
    clock = FakeClock()
    worker = supervised(backoff=Backoff(1.0, 8.0), healthy_s=HEALTHY_S, clock=clock)
    await worker.start()
    for _ in range(3):
        await crash(worker)  # crash loop: each restart waits longer
    clock.now += HEALTHY_S  # then a worker runs fine for a minute, and crashes
    await crash(worker)
    assert worker.delays == [1.0, 2.0, 4.0, 1.0]
    assert worker.restarts == 4


async def test_a_restart_that_cannot_start_the_process_is_logged_and_tried_again(
    supervised: Callable[..., StandIn], caplog: pytest.LogCaptureFixture
) -> None:
    worker = supervised(backoff=Backoff(0.01, 0.02))
    await worker.start()
    worker.failing = 2  # e.g. out of memory, or too many open files, for a while
    with caplog.at_level(logging.ERROR, logger="eventgateway.supervisor"):
        await crash(worker)
    assert worker.pid is not None
    os.kill(worker.pid, 0)  # the new worker runs
    assert worker.restarts == 1
    failures = [r for r in caplog.records if "cannot start the delivery worker" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info for r in failures)
