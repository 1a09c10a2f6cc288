"""``DeliveryLog.holdings`` and ``forget_space`` on every backend (``BACKENDS``): what a
deleted space leaves in the delivery log, and that nothing of it is left after a forget
(docs/security.md: a deleted space's delivery log never passes to the name's next owner).
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import AsyncIterator

import pytest

from eventgateway.queue.base import Accepted, NewDelivery
from eventgateway.queue.log_views import SpaceHoldings
from eventgateway.queue.sqlite import SqliteQueue
from tests.queue.kit import (
    BACKENDS,
    SPACE,
    FakeClock,
    MakeQueue,
    Queue,
    attempt,
    event,
    lease,
    put,
    queues,
)

OTHER = "other"

# Where JetStream cannot keep the contract, and why (queue/jetstream_forget.py).
JETSTREAM_GAPS = {
    "test_a_forgotten_event_id_is_new_again": (
        "the server keeps published message ids for its duplicate window whatever is "
        "purged (nats-server issue 6782)"
    ),
    "test_forgotten_unsettled_deliveries_leave_the_queue_and_its_bounds": (
        "the work-queue stream cannot be searched by space; deleting a space waits for "
        "its unsettled deliveries instead"
    ),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=list(BACKENDS))
async def make_queue(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, clock: FakeClock
) -> AsyncIterator[MakeQueue]:
    gap = JETSTREAM_GAPS.get(request.node.originalname)
    if request.param == "jetstream" and gap is not None:
        pytest.skip(gap)
    async with queues(request.param, tmp_path, clock) as make:
        yield make


@pytest.fixture
async def queue(make_queue: MakeQueue) -> Queue:
    return await make_queue()


async def settled(
    queue: Queue, event_id: str, *subscriptions: str, space: str = SPACE, dead: bool = False
) -> None:
    """Accept an event and settle its deliveries: dead letters if ``dead``, else acked.
    Nothing else may be due."""
    await put(queue, event_id, *subscriptions, space=space)
    left = len(subscriptions)
    while left > 0:
        for delivery in await lease(queue):
            if dead:
                await queue.dead_letter(delivery, "gave up", attempt("failed", 500))
            else:
                await queue.ack(delivery, attempt())
            left -= 1


async def test_holdings_count_dead_letters_and_unsettled_deliveries_of_the_space(
    queue: Queue,
) -> None:
    await settled(queue, "e1", "s1")
    await settled(queue, "e2", "s1", dead=True)
    await settled(queue, "e3", "s1", space=OTHER, dead=True)
    await put(queue, "e4", "s1", "s2")  # two unsettled deliveries

    assert await queue.holdings(SPACE) == SpaceHoldings(dead_letters=1, unsettled=2)
    assert await queue.holdings(OTHER) == SpaceHoldings(dead_letters=1, unsettled=0)
    assert await queue.holdings("nobody") == SpaceHoldings(dead_letters=0, unsettled=0)


async def test_a_retrying_delivery_counts_as_unsettled(queue: Queue) -> None:
    await put(queue, "e1", "s1")
    [delivery] = await lease(queue)
    await queue.retry_later(delivery, 3600.0, attempt("failed", 503))

    assert await queue.holdings(SPACE) == SpaceHoldings(dead_letters=0, unsettled=1)


async def test_forget_space_deletes_the_spaces_history_and_dead_letters_only(queue: Queue) -> None:
    await settled(queue, "e1", "s1")
    await settled(queue, "e2", "s1", dead=True)
    await settled(queue, "e1", "s1", space=OTHER)
    await settled(queue, "e2", "s1", space=OTHER, dead=True)

    await queue.forget_space(SPACE)

    assert await queue.get_event(SPACE, "e1") is None
    assert await queue.get_event(SPACE, "e2") is None
    assert await queue.list_events(SPACE) == []
    assert await queue.list_dead_letters(SPACE) == []
    assert await queue.holdings(SPACE) == SpaceHoldings(dead_letters=0, unsettled=0)
    kept = await queue.list_events(OTHER)
    assert [(e.id, e.state) for e in kept] == [("e2", "dead"), ("e1", "delivered")]
    assert [d.event_id for d in await queue.list_dead_letters(OTHER)] == ["e2"]
    assert await queue.holdings(OTHER) == SpaceHoldings(dead_letters=1, unsettled=0)


async def test_forget_space_is_idempotent(queue: Queue) -> None:
    await settled(queue, "e1", "s1")

    await queue.forget_space(SPACE)
    await queue.forget_space(SPACE)
    await queue.forget_space("never-used")

    assert await queue.list_events(SPACE) == []


async def test_an_event_fanned_out_to_several_spaces_keeps_the_others_deliveries(
    queue: Queue,
) -> None:
    fanned = Accepted(
        event("sys-1"), [NewDelivery(SPACE, "s1", "fn-s1"), NewDelivery(OTHER, "s9", "fn-s9")]
    )
    await queue.accept([fanned])
    for delivery in await lease(queue):
        await queue.ack(delivery, attempt())

    await queue.forget_space(SPACE)

    assert await queue.get_event(SPACE, "sys-1") is None
    view = await queue.get_event(OTHER, "sys-1")
    assert view is not None
    assert [d.subscription_id for d in view.deliveries] == ["s9"]


async def test_a_forgotten_delivery_settled_late_shows_nowhere(queue: Queue) -> None:
    await put(queue, "e1", "s1")
    [delivery] = await lease(queue)

    await queue.forget_space(SPACE)
    await queue.ack(delivery, attempt("skipped", None, "subscription no longer exists"))

    assert await queue.get_event(SPACE, "e1") is None
    assert await queue.list_events(SPACE) == []


async def test_a_forgotten_event_id_is_new_again(queue: Queue) -> None:
    await settled(queue, "e1", "s1")

    await queue.forget_space(SPACE)

    assert await put(queue, "e1", "s1") is False  # not a duplicate of the forgotten one
    assert await put(queue, "e1", "s1", space=OTHER) is False


async def test_forgotten_unsettled_deliveries_leave_the_queue_and_its_bounds(queue: Queue) -> None:
    await put(queue, "e1", "s1", key="k")  # ordered: its key's later events wait behind it
    await put(queue, "e2", "s1", key="k")
    await put(queue, "e3", "s1")
    await put(queue, "e3", "s1", space=OTHER)
    before = queue.backlog()

    await queue.forget_space(SPACE)

    assert queue.backlog() == before - 3
    assert [(d.space, d.event.id) for d in await lease(queue)] == [(OTHER, "e3")]
    assert await queue.holdings(SPACE) == SpaceHoldings(dead_letters=0, unsettled=0)


async def test_sqlite_forgets_in_batches_and_keeps_its_counters_exact(
    tmp_path: pathlib.Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("eventgateway.queue.sqlite_forget._FORGET_BATCH", 2)
    path = tmp_path / "queue.db"
    queue = SqliteQueue(path, clock=clock)
    await queue.open()
    try:
        for n in range(5):
            await settled(queue, f"d{n}", "s1", dead=n < 2)
        await settled(queue, "x", "s1", space=OTHER, dead=True)
        for n in range(3):
            await put(queue, f"p{n}", "s1")
        await put(queue, "p0", "s1", space=OTHER)

        await queue.forget_space(SPACE)

        assert await queue.list_events(SPACE) == []
        assert await queue.holdings(OTHER) == SpaceHoldings(dead_letters=1, unsettled=1)
    finally:
        await queue.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        kept = conn.execute("SELECT backlog, bytes, dead FROM counters").fetchone()
        left = conn.execute(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'pending'), "
            "(SELECT SUM(size) FROM events WHERE seq IN "
            "(SELECT event_seq FROM deliveries WHERE state = 'pending')), "
            "(SELECT COUNT(*) FROM deliveries WHERE state = 'dead')"
        ).fetchone()
        orphans = conn.execute(
            "SELECT (SELECT COUNT(*) FROM events WHERE space = ?), "
            "(SELECT COUNT(*) FROM attempts WHERE delivery_id NOT IN (SELECT id FROM deliveries))",
            (SPACE,),
        ).fetchone()
    assert kept == left
    assert kept[0] == kept[2] == 1
    assert orphans == (0, 0)
