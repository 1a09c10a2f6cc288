"""Lease renewal (``dispatch/renewal.py``): a live dispatcher keeps the leases of its long
attempts, so a delivery is never attempted twice at once in a healthy process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher, DispatchHooks
from eventgateway.dispatch.invoke import Outcome
from eventgateway.dispatch.renewal import Attempt, LeaseRenewer
from eventgateway.errors import StoreError
from eventgateway.events.model import CloudEvent
from eventgateway.providers.base import Reply
from eventgateway.queue.base import Delivery
from eventgateway.queue.memory import MemoryQueue
from tests.dispatch.test_dispatcher import DEADLINE_S, Table, _put


class SlowInvoker:
    """Each call takes ``duration_s`` (the function's work); counts the calls begun."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.started: list[str] = []

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.started.append(event.id)
        await asyncio.sleep(self.duration_s)
        return Outcome(ok=True, reply=Reply(status=200, body=b""))


class RecordingQueue(MemoryQueue):
    """Records every ``extend`` call's delivery ids; ``fail`` makes them raise."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.extended: list[list[str]] = []
        self.fail = False

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        self.extended.append([d.id for d in deliveries])
        if self.fail:
            raise StoreError("the store is down")
        await super().extend(deliveries)


class Settled(DispatchHooks):
    """Sets ``done`` once ``count`` deliveries are settled."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = asyncio.Event()

    def after_settle(self, delivery: Delivery, state: str) -> None:
        self.count -= 1
        if self.count == 0:
            self.done.set()


async def _run_until_settled(queue: MemoryQueue, invoker: SlowInvoker, count: int = 1) -> None:
    settled = Settled(count)
    dispatcher = Dispatcher(queue, invoker, Table, hooks=settled)  # type: ignore[arg-type]
    runner = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.wait_for(settled.done.wait(), DEADLINE_S)  # every first attempt acked
    finally:
        dispatcher.stop()
        await asyncio.wait_for(runner, DEADLINE_S)
    assert queue.backlog() == 0


async def test_an_attempt_longer_than_several_leases_is_made_once() -> None:
    queue = RecordingQueue(lease_s=0.3)
    invoker = SlowInvoker(duration_s=1.2)  # four leases
    await _put(queue, "s1", "e1")

    await _run_until_settled(queue, invoker)

    assert invoker.started == ["e1"]  # no second copy while the first ran
    assert len(queue.extended) >= 3


async def test_short_attempts_are_never_renewed() -> None:
    queue = RecordingQueue(lease_s=60.0)
    invoker = SlowInvoker(duration_s=0.0)
    await _put(queue, "s1", *(f"e{n}" for n in range(50)))

    await _run_until_settled(queue, invoker, count=50)

    assert len(invoker.started) == 50
    assert queue.extended == []


async def test_a_failed_renewal_is_logged_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = RecordingQueue(lease_s=0.3)
    queue.fail = True
    invoker = SlowInvoker(duration_s=0.5)
    await _put(queue, "s1", "e1")

    with caplog.at_level(logging.WARNING, logger="eventgateway.dispatch.renewal"):
        await _run_until_settled(queue, invoker)

    assert queue.extended
    assert "renewing the leases of 1 long-running deliveries failed" in caplog.text
    assert "the store is down" in caplog.text


class _Queue(RecordingQueue):
    def __init__(self) -> None:
        super().__init__(lease_s=8.0)


def _attempt(delivery_id: str) -> Attempt:
    event = CloudEvent("1.0", delivery_id, "src", "t")
    return Attempt(Delivery(delivery_id, "s", "sub", "fn", event, accepted_at=0.0))


async def test_a_tick_renews_only_the_attempts_due_and_keeps_them_in_order() -> None:
    queue = _Queue()
    now = [0.0]
    renewer = LeaseRenewer(queue, clock=lambda: now[0])
    a, b, c = _attempt("1"), _attempt("2"), _attempt("3")
    renewer.started(a, 0.0)
    renewer.started(b, 0.0)
    renewer.started(c, 1.5)
    renewer.finished(b)

    now[0] = 2.0
    assert await renewer.renew_due(2.0) == 1  # a only: b is done, c is younger
    now[0] = 3.5
    assert await renewer.renew_due(2.0) == 1  # c now; a was renewed at 2.0
    now[0] = 4.0
    assert await renewer.renew_due(2.0) == 1  # a again

    assert queue.extended == [["1"], ["3"], ["1"]]
    assert len(renewer) == 2
