"""The SQLite lease while subscriptions are busy or the file is locked: it waits rather
than look at the file again and again, and a failed look keeps the handed deliveries."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Sequence

import pytest

from eventgateway.errors import StoreError
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.queue.sqlite_handoff import HandedEvent
from tests.queue.kit import (
    DEADLINE_S,
    OpenSqlite,
    hold_write_lock,
    ids,
    let_go,
    put,
    round_trips,
)


async def first_look(queue: SqliteQueue, before: int) -> None:
    """Until the writer ran an op past ``before`` (the lease's first look at the file)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while queue.stats()["items"] == before:
        assert loop.time() < deadline, "the lease did not read the file"
        await asyncio.sleep(0.005)


async def test_a_lease_waits_while_only_busy_subscriptions_have_due_deliveries(
    open_queue: OpenSqlite,
) -> None:
    queue = await open_queue()
    for n in range(10):  # a short backlog: the head scan sees every row of it
        await put(queue, f"b{n}", "busy")
    busy = {"busy"}  # the dispatcher's live set of subscriptions with no free slot
    before = queue.stats()["items"]
    leasing = asyncio.create_task(queue.lease(10, exclude=busy))
    await first_look(queue, before)

    # It found nothing it may take: it waits, and does not look at the file meanwhile
    # (it did, in a write transaction each time, for as long as "busy" stayed busy).
    assert await round_trips(queue, 20) <= 1
    assert not leasing.done()

    await put(queue, "o1", "other")  # a delivery it may take wakes it
    assert ids(await asyncio.wait_for(leasing, DEADLINE_S)) == [("o1", "other")]

    leasing = asyncio.create_task(queue.lease(10, exclude=busy))
    busy.clear()  # a slot freed: the dispatcher says so
    queue.notify()
    leased = await asyncio.wait_for(leasing, DEADLINE_S)
    assert [d.event.id for d in leased] == [f"b{n}" for n in range(10)]


class Link:
    """The accepting side's hand-off, with credit for everything."""

    def __init__(self) -> None:
        self.sent: list[HandedEvent] = []

    def reserve(self, count: int) -> int:
        return 1

    def hand(self, ticket: int, events: Sequence[HandedEvent], reserved: int) -> None:
        self.sent.extend(events)


async def test_a_failed_look_at_the_file_keeps_the_handed_deliveries_and_their_credit(
    open_queue: OpenSqlite, path: pathlib.Path
) -> None:
    ingest, worker = await open_queue(), await open_queue(busy_timeout_s=0.1)
    link = Link()
    ingest.handoff = link
    granted: list[int] = []
    worker.on_handed_out = granted.append
    for n in range(3):
        await put(ingest, f"e{n}", "s1")
    worker.hand(link.sent)
    worker.notify()  # something may be due in the file too: the lease looks there

    other = hold_write_lock(path)
    try:
        with pytest.raises(StoreError, match="locked"):
            await asyncio.wait_for(worker.lease(10), DEADLINE_S)
        assert worker.handed() == 3  # still held, not dropped to wait out their lease
        assert granted == []  # their credit is given back when they are leased out
    finally:
        let_go(other)

    leased = await asyncio.wait_for(worker.lease(10), DEADLINE_S)
    assert [d.event.id for d in leased] == ["e0", "e1", "e2"]
    assert sum(granted) == 3
