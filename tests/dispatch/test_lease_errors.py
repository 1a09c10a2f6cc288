"""A lease that fails: a busy store pauses leasing (deliveries in flight carry on), any
other error ends ``Dispatcher.run`` and ``run_restarting`` starts it again."""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import Callable, Collection
from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Outcome
from eventgateway.dispatch.restarting import Backoff, run_restarting
from eventgateway.errors import StoreError
from eventgateway.events.model import CloudEvent
from eventgateway.providers.base import Reply
from eventgateway.queue.base import Accepted, Delivery, DeliveryQueue, NewDelivery, Room
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.sqlite import SqliteQueue
from tests.dispatch.test_dispatcher import Table
from tests.queue.kit import hold_write_lock, let_go

DEADLINE_S = 10.0


class Invoker:
    """Records every call; a call to ``slow`` waits for ``release``."""

    def __init__(self) -> None:
        self.called: list[str] = []
        self.finished: list[str] = []
        self.changed = asyncio.Event()
        self.release = asyncio.Event()

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.called.append(event.id)
        self.changed.set()
        if kw["function_id"] == "slow":
            await self.release.wait()
        self.finished.append(event.id)
        self.changed.set()
        return Outcome(ok=True, reply=Reply(status=200, body=b""))

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), DEADLINE_S)


class WatchedQueue(SqliteQueue):
    """Sets ``failed`` when a lease raises StoreError."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.failed = asyncio.Event()

    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        try:
            return await super().lease(max_count, exclude=exclude, room=room)
        except StoreError:
            self.failed.set()
            raise


class BrokenQueue(MemoryQueue):
    """Its first ``breaks`` leases raise a bug's error (not a StoreError)."""

    def __init__(self, breaks: int) -> None:
        super().__init__()
        self.breaks = breaks

    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        if self.breaks:
            self.breaks -= 1
            raise RuntimeError("a bug in the queue")
        return await super().lease(max_count, exclude=exclude, room=room)


async def put(queue: DeliveryQueue, event_id: str, subscription_id: str) -> None:
    event = CloudEvent(id=event_id, source="/t", type="t", specversion="1.0", data={})
    delivery = NewDelivery(space="s", subscription_id=subscription_id, function_id=subscription_id)
    await queue.accept([Accepted(event, [delivery])])


async def test_a_locked_queue_file_pauses_leasing_and_spares_deliveries_in_flight(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = WatchedQueue(tmp_path / "queue.db", busy_timeout_s=0.1)
    await queue.open()
    invoker = Invoker()
    dispatcher = Dispatcher(queue, invoker, Table)  # type: ignore[arg-type]
    runner = asyncio.create_task(dispatcher.run())
    try:
        await put(queue, "in-flight", "slow")
        await invoker.until(lambda: "in-flight" in invoker.called)
        other = hold_write_lock(tmp_path / "queue.db")
        with caplog.at_level(logging.WARNING, logger="eventgateway.dispatch.dispatcher"):
            queue.notify()  # the dispatcher looks at the file, and finds it locked
            await asyncio.wait_for(queue.failed.wait(), DEADLINE_S)
        let_go(other)

        invoker.release.set()  # the attempt in flight was not cancelled: it finishes
        await invoker.until(lambda: "in-flight" in invoker.finished)
        await put(queue, "after", "fast")  # and leasing goes on
        await invoker.until(lambda: "after" in invoker.finished)
        assert not runner.done()
    finally:
        dispatcher.stop()
        invoker.release.set()
        await asyncio.wait_for(runner, DEADLINE_S)
        await queue.close()
    assert "leasing deliveries failed" in caplog.text
    assert "database is locked" in caplog.text
    assert queue.backlog() == 0  # both acked


def test_the_pause_between_failed_tries_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next_s() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next_s() == 0.1
    with pytest.raises(ValueError, match="first_s"):
        Backoff(0.0, 1.0)


async def test_any_other_lease_error_ends_run() -> None:
    queue = BrokenQueue(breaks=1)
    dispatcher = Dispatcher(queue, Invoker(), Table)  # type: ignore[arg-type]
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(dispatcher.run(), DEADLINE_S)
    assert raised.group_contains(RuntimeError, match="a bug in the queue")


async def test_run_restarting_logs_a_dead_dispatcher_and_starts_it_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = BrokenQueue(breaks=2)
    await put(queue, "e1", "fast")
    invoker = Invoker()
    dispatcher = Dispatcher(queue, invoker, Table)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="eventgateway.dispatch.restarting"):
        runner = asyncio.create_task(run_restarting(dispatcher, backoff=Backoff(0.01, 0.02)))
        try:
            await invoker.until(lambda: "e1" in invoker.finished)
        finally:
            dispatcher.stop()
            await asyncio.wait_for(runner, DEADLINE_S)
    deaths = [r for r in caplog.records if "stopped unexpectedly" in r.getMessage()]
    assert len(deaths) == 2
    assert all(r.levelno == logging.ERROR and r.exc_info for r in deaths)


async def test_run_restarting_returns_when_stopped_during_its_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = BrokenQueue(breaks=1)
    dispatcher = Dispatcher(queue, Invoker(), Table)  # type: ignore[arg-type]
    # A pause far longer than the test's deadline: only stop() can end it in time.
    with caplog.at_level(logging.ERROR, logger="eventgateway.dispatch.restarting"):
        runner = asyncio.create_task(run_restarting(dispatcher, backoff=Backoff(600.0, 600.0)))
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while "restarting it in 600.0 s" not in caplog.text:  # it is in its pause
            assert asyncio.get_running_loop().time() < deadline, "the dispatcher did not die"
            await asyncio.sleep(0.01)
    dispatcher.stop()
    await asyncio.wait_for(runner, DEADLINE_S)
