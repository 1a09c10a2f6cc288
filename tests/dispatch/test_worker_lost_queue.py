"""The delivery worker's dispatcher fails once its queue's NATS client is closed for good,
so that the worker exits and its supervisor starts one with a new client (the gateway's
side is tests/e2e/test_nats_closed_for_good.py)."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any, cast

import pytest

from eventgateway.call_worker import QueueOptions
from eventgateway.dispatch.host import DispatchHost
from eventgateway.dispatch.worker_queue import _run_until_lost
from eventgateway.errors import StoreError

DEADLINE_S = 5.0


class StubHost:
    """``run()`` until ``stop()``, as DispatchHost's loop does; records the calls."""

    def __init__(self) -> None:
        self.stopped = asyncio.Event()
        self.calls: list[str] = []

    async def run(self) -> None:
        self.calls.append("run")
        try:
            await self.stopped.wait()
        except asyncio.CancelledError:
            self.calls.append("cancelled")
            raise
        self.calls.append("ran out")

    def stop(self) -> None:
        self.calls.append("stop")
        self.stopped.set()


def options(**kw: Any) -> QueueOptions:
    return QueueOptions(pathlib.Path("unused.sock"), pathlib.Path("unused.db"), **kw)


async def test_a_lost_client_stops_the_host_and_fails_with_the_reason() -> None:
    host = StubHost()
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_run_until_lost(cast(DispatchHost, host), lost, options()))
    await asyncio.sleep(0)  # the host runs

    lost.set_result("the delivery queue's NATS connection was closed for good (x)")

    with pytest.raises(StoreError, match=r"closed for good \(x\)"):
        await asyncio.wait_for(task, DEADLINE_S)
    assert host.calls == ["run", "stop", "ran out"]  # in-flight work finished first


async def test_a_host_that_ends_by_itself_ends_the_task_without_an_error() -> None:
    host = StubHost()
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_run_until_lost(cast(DispatchHost, host), lost, options()))
    await asyncio.sleep(0)

    host.stop()  # the gateway asked the worker to drain

    assert await asyncio.wait_for(task, DEADLINE_S) is None
    assert not lost.done()


async def test_cancelling_the_task_cancels_the_host() -> None:
    host = StubHost()
    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_run_until_lost(cast(DispatchHost, host), lost, options()))
    await asyncio.sleep(0)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE_S)
    for _ in range(10):  # the host's own task takes the cancellation on its next step
        if host.calls[-1] == "cancelled":
            break
        await asyncio.sleep(0)
    assert host.calls == ["run", "cancelled"]
