"""A subscription whose slots are all busy, with a short backlog, on a real SQLite file:
the dispatcher waits for a slot to free instead of leasing in a loop."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Outcome
from eventgateway.events.model import CloudEvent
from eventgateway.providers.base import Reply
from eventgateway.queue.sqlite import SqliteQueue
from tests.dispatch.test_dispatcher import Table
from tests.queue.kit import accepted, round_trips

DEADLINE_S = 10.0


class HungInvoker:
    """Every call hangs until ``gate`` is set; ``calls`` counts them."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0
        self.done = 0
        self.changed = asyncio.Event()

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.calls += 1
        self.changed.set()
        await self.gate.wait()
        self.done += 1
        self.changed.set()
        return Outcome(ok=True, reply=Reply(status=200, body=b""))

    async def until(self, condition: Any) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), DEADLINE_S)


async def test_a_saturated_subscription_makes_the_dispatcher_wait_not_spin(
    tmp_path: pathlib.Path,
) -> None:
    queue = SqliteQueue(tmp_path / "queue.db")
    await queue.open()
    await queue.accept([accepted(f"e{n}", "hung") for n in range(10)])
    invoker = HungInvoker()
    dispatcher = Dispatcher(queue, invoker, Table, per_subscription=4)  # type: ignore[arg-type]
    runner = asyncio.create_task(dispatcher.run())
    try:
        await invoker.until(lambda: invoker.calls == 4)
        # Its slots are full and six deliveries are due: at most the one look that found
        # nothing it may take (the old code looked thousands of times a second).
        assert await round_trips(queue, 20) <= 1
        invoker.gate.set()  # the endpoint answers: the slots free, the rest is delivered
        await invoker.until(lambda: invoker.done == 10)
    finally:
        dispatcher.stop()
        invoker.gate.set()
        await asyncio.wait_for(runner, DEADLINE_S)
        await queue.close()
