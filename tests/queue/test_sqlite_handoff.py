"""The SQLite queue's hand-off (``queue/sqlite_handoff.py``): an accepting queue and a
leasing queue on one file, the accepting one handing fresh deliveries to the other through a
stand-in for the gateway's link."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgateway.errors import TooManyRequestsError
from eventgateway.events.codec import encode_event
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.queue.sqlite_handoff import HandedDeliveries, HandedEvent
from tests.queue.kit import DEADLINE_S, T0, FakeClock, OpenSqlite, accepted, attempt, ids, put

LEASE_S = 60.0  # SqliteQueue's default


class Link:
    """The accepting side's hand-off as ``DispatchLink`` does it: credit, and what it sent."""

    def __init__(self, credit: int = 1000) -> None:
        self.credit = credit
        self.reserved = 0
        self.sent: list[HandedEvent] = []

    def reserve(self, count: int) -> int:
        if self.credit - self.reserved < count:
            return 0
        self.reserved += count
        return 1

    def hand(self, ticket: int, events: Sequence[HandedEvent], reserved: int) -> None:
        assert ticket == 1
        self.reserved -= reserved
        self.sent.extend(events)
        self.credit -= sum(len(event.deliveries) for event in events)

    def take(self) -> list[HandedEvent]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
async def pair(open_queue: OpenSqlite) -> tuple[SqliteQueue, SqliteQueue, Link]:
    """(accepting queue with a link, leasing queue) on one file."""
    ingest, dispatch = await open_queue(), await open_queue()
    link = Link()
    ingest.handoff = link
    return ingest, dispatch, link


def rows(path: pathlib.Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT id, subscription_id, due_at, lease_until FROM deliveries ORDER BY id"
        ).fetchall()
    conn.close()
    return found


async def lease(queue: SqliteQueue, max_count: int = 100, **kw: Any) -> list[Any]:
    return await asyncio.wait_for(queue.lease(max_count, **kw), DEADLINE_S)


async def waiting_on_the_file(queue: SqliteQueue, **kw: Any) -> asyncio.Task[list[Any]]:
    """A lease that looked at the file, found nothing due, and now waits."""
    before = queue.stats()["transactions"]
    task = asyncio.create_task(queue.lease(100, **kw))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while queue.stats()["transactions"] == before:  # the writer thread commits the lease
        assert loop.time() < deadline, "the lease did not read the file"
        await asyncio.sleep(0.005)
    # (If the task has not resumed yet, a hand-off or notify still wakes it: it took the
    # wake-up token before reading the file.)
    return task


async def test_fresh_deliveries_are_committed_leased_and_handed_over(
    pair: tuple[SqliteQueue, SqliteQueue, Link],
) -> None:
    ingest, dispatch, link = pair
    waiting = await waiting_on_the_file(dispatch)
    transactions = dispatch.stats()["transactions"]

    assert await put(ingest, "e1", "s1", "s2") is False

    (handed,) = link.sent
    assert link.reserved == 0
    assert link.credit == 998
    until = T0 + LEASE_S
    assert (handed.received_at, handed.lease_until) == (T0, until)
    # Committed as a claim would have left them: leased, with the ids the rows got.
    assert rows(ingest.path) == [(row[0], row[2], until, until) for row in handed.deliveries]
    assert [row[2] for row in handed.deliveries] == ["s1", "s2"]

    dispatch.hand(link.take())
    got = await asyncio.wait_for(waiting, DEADLINE_S)
    assert ids(got) == [("e1", "s1"), ("e1", "s2")]
    assert [int(d.id) for d in got] == [row[0] for row in handed.deliveries]
    assert got[0].accepted_at == T0
    assert got[0].body == handed.body
    assert got[0].attempt == 0
    assert got[0].event is got[1].event  # shared: nobody changes it in place (Delivery)
    # Handed over without reading the file again.
    assert dispatch.stats()["transactions"] == transactions

    for delivery in got:
        await dispatch.ack(delivery, attempt())
    view = await ingest.get_event("acme", "e1")
    assert view is not None
    assert [d.state for d in view.deliveries] == ["delivered"] * 2
    assert dispatch.backlog() == 0


async def test_a_handed_delivery_that_never_arrives_is_leased_from_the_file_later(
    pair: tuple[SqliteQueue, SqliteQueue, Link], clock: FakeClock
) -> None:
    ingest, dispatch, link = pair
    await put(ingest, "e1", "s1")
    link.take()  # the frame is lost: the worker died, or the link did
    dispatch.notify()
    waiting = await waiting_on_the_file(dispatch)

    clock.advance(LEASE_S + 1)
    dispatch.notify()
    assert ids(await asyncio.wait_for(waiting, DEADLINE_S)) == [("e1", "s1")]


async def test_a_handed_delivery_never_settled_is_leased_again_when_its_lease_ends(
    pair: tuple[SqliteQueue, SqliteQueue, Link], clock: FakeClock
) -> None:
    ingest, dispatch, link = pair
    waiting = await waiting_on_the_file(dispatch)  # the file, empty, was seen before e1
    await put(ingest, "e1", "s1")
    dispatch.hand(link.take())
    assert ids(await asyncio.wait_for(waiting, DEADLINE_S)) == [("e1", "s1")]

    # Its settle never happens (it failed): no signal comes, yet once its lease has run
    # out the next lease looks at the file and finds it.
    clock.advance(LEASE_S + 1)
    (again,) = await lease(dispatch)
    assert ids([again]) == [("e1", "s1")]
    assert again.attempt == 0


async def test_without_credit_or_with_a_partition_key_deliveries_are_written_due(
    pair: tuple[SqliteQueue, SqliteQueue, Link],
) -> None:
    ingest, dispatch, link = pair
    link.credit = 1
    await put(ingest, "e1", "s1", "s2")  # two deliveries, one credit: none handed
    await put(ingest, "e2", "s1", key="k")  # ordered: its key's order lives in the file
    assert link.sent == []
    assert link.reserved == 0
    assert [row[3] for row in rows(ingest.path)] == [None, None, None]

    dispatch.notify()
    assert ids(await lease(dispatch)) == [("e1", "s1"), ("e1", "s2"), ("e2", "s1")]


async def test_duplicates_and_refusals_hand_nothing_and_give_their_credit_back(
    open_queue: OpenSqlite,
) -> None:
    ingest = await open_queue(max_deliveries=2)
    link = Link()
    ingest.handoff = link

    await put(ingest, "e1", "s1")
    assert await put(ingest, "e1", "s1") is True
    with pytest.raises(TooManyRequestsError):
        await put(ingest, "e2", "s1", "s2")
    assert [[row[2] for row in e.deliveries] for e in link.sent] == [["s1"]]
    assert link.reserved == 0
    assert link.credit == 999


async def test_a_lease_serves_held_deliveries_and_due_file_rows_together(
    pair: tuple[SqliteQueue, SqliteQueue, Link],
) -> None:
    ingest, dispatch, link = pair
    link.credit = 0
    await put(ingest, "old", "s1")  # due in the file
    link.credit = 10
    await put(ingest, "new", "s2")
    dispatch.hand(link.take())
    dispatch.notify()  # what the gateway's Wake for "old" does

    assert ids(await lease(dispatch)) == [("old", "s1"), ("new", "s2")]


async def test_after_a_signal_a_lease_looks_at_the_file_again(
    pair: tuple[SqliteQueue, SqliteQueue, Link],
) -> None:
    ingest, dispatch, link = pair
    await put(ingest, "e1", "s1")
    dispatch.hand(link.take())
    assert ids(await lease(dispatch)) == [("e1", "s1")]  # looked at the file: empty
    await put(ingest, "e2", "s1")
    dispatch.hand(link.take())
    transactions = dispatch.stats()["transactions"]
    assert ids(await lease(dispatch)) == [("e2", "s1")]
    assert dispatch.stats()["transactions"] == transactions  # memory only

    link.credit = 0
    await put(ingest, "e3", "s1")  # due in the file
    await put(ingest, "e4", "s1")
    link.credit = 10
    await put(ingest, "e5", "s1")
    dispatch.hand(link.take())
    dispatch.notify()
    assert ids(await lease(dispatch)) == [("e3", "s1"), ("e4", "s1"), ("e5", "s1")]


async def test_held_deliveries_of_a_busy_subscription_go_back_to_the_file(
    pair: tuple[SqliteQueue, SqliteQueue, Link], clock: FakeClock
) -> None:
    ingest, dispatch, link = pair
    given_back: list[int] = []
    dispatch.on_handed_out = given_back.append
    await put(ingest, "e1", "s1")
    await put(ingest, "e2", "s2")
    dispatch.hand(link.take())

    # s1 has no free slot: its delivery stays held while s2's goes out.
    assert ids(await lease(dispatch, exclude={"s1"})) == [("e2", "s2")]
    assert dispatch.handed() == 1
    assert given_back == [1]

    # Held past half its lease: released in the file (so its lease cannot run out while
    # it is held), and leased from there once s1 has room — once.
    clock.advance(LEASE_S / 2 + 1)
    waiting = await waiting_on_the_file(dispatch, exclude={"s1"})
    assert dispatch.handed() == 0
    assert given_back == [1, 1]
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    (again,) = await lease(dispatch)
    assert ids([again]) == [("e1", "s1")]
    dispatch.notify()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(dispatch.lease(100), 0.2)


async def test_a_lease_cancelled_while_reading_the_file_keeps_what_it_held(
    pair: tuple[SqliteQueue, SqliteQueue, Link],
) -> None:
    ingest, dispatch, link = pair
    await put(ingest, "e1", "s1")
    dispatch.hand(link.take())
    dispatch.notify()  # so the lease reads the file after taking e1
    task = asyncio.create_task(dispatch.lease(100))
    await asyncio.sleep(0)  # it took e1 and waits for the file
    assert dispatch.handed() == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert dispatch.handed() == 1
    assert ids(await lease(dispatch)) == [("e1", "s1")]


async def test_an_undecodable_handed_event_goes_to_the_file(
    pair: tuple[SqliteQueue, SqliteQueue, Link],
) -> None:
    ingest, dispatch, link = pair
    await put(ingest, "e1", "s1")
    (handed,) = link.take()
    handed.body = b"\x00"
    dispatch.hand([handed])

    assert dispatch.handed() == 0
    # Released in the file, whose stored copy is whole: leased from there.
    (delivery,) = await lease(dispatch)
    assert ids([delivery]) == [("e1", "s1")]


def test_held_deliveries_are_taken_oldest_first_within_each_room() -> None:
    held = HandedDeliveries()
    body = accepted_body()
    held.add(
        [
            HandedEvent(
                body, T0, T0 + 60, [(3, "acme", "a", "fa", None), (4, "acme", "b", "fb", None)]
            ),
            HandedEvent(body, T0, T0 + 60, [(5, "acme", "a", "fa", b'{"x":1}')]),
            HandedEvent(body, T0, T0 + 61, [(6, "acme", "b", "fb", None)]),
        ]
    )
    room = {"a": 1, "b": 5}
    taken = held.take(10, (), lambda sub: room[sub])
    assert [(int(d.id), d.subscription_id) for d, _ in taken] == [(3, "a"), (4, "b"), (6, "b")]
    assert len(held) == 1
    (rest,) = held.take(10, (), None)
    assert int(rest[0].id) == 5
    assert rest[0].auth_request == {"x": 1}
    assert held.take(10, (), None) == []


@settings(max_examples=200, deadline=None)
@given(
    subs=st.lists(st.sampled_from("abcd"), min_size=1, max_size=40),
    rooms=st.fixed_dictionaries({sub: st.integers(0, 6) for sub in "abcd"}),
    exclude=st.sets(st.sampled_from("abcd"), max_size=2),
    max_counts=st.lists(st.integers(0, 12), min_size=1, max_size=6),
)
def test_take_is_the_oldest_within_room_whatever_the_mix(
    subs: list[str], rooms: dict[str, int], exclude: set[str], max_counts: list[int]
) -> None:
    held = HandedDeliveries()
    body = accepted_body()
    held.add(
        [
            HandedEvent(body, T0, T0 + 60, [(n, "acme", sub, "f", None)])
            for n, sub in enumerate(subs)
        ]
    )
    model = list(enumerate(subs))  # what is held: (id, subscription), oldest first
    for max_count in max_counts:
        taken = held.take(max_count, exclude, lambda sub: rooms[sub])
        allowed: list[tuple[int, str]] = []
        for sub in sorted(set(subs) - exclude):
            allowed += [pair for pair in model if pair[1] == sub][: rooms[sub]]
        expected = sorted(allowed)[:max_count]
        assert [(int(d.id), d.subscription_id) for d, _ in taken] == expected
        model = [pair for pair in model if pair not in expected]
        assert len(held) == len(model)


def accepted_body() -> bytes:
    return encode_event(accepted("e1", "a").event)


async def test_a_handed_delivery_keeps_its_file_lease_while_renewed(
    pair: tuple[SqliteQueue, SqliteQueue, Link], clock: FakeClock
) -> None:
    ingest, dispatch, link = pair
    waiting = await waiting_on_the_file(dispatch)
    await put(ingest, "e1", "s1")
    dispatch.hand(link.take())
    (first,) = await asyncio.wait_for(waiting, DEADLINE_S)
    assert first.lease_until == T0 + LEASE_S  # the lease the accept wrote in the file

    clock.advance(LEASE_S / 2)
    await dispatch.extend([first])
    clock.advance(LEASE_S / 2 + 1)  # past the lease the accept wrote
    await put(ingest, "e2", "s1")
    dispatch.hand(link.take())
    dispatch.notify()

    assert ids(await lease(dispatch)) == [("e2", "s1")]  # the renewed e1 is not due
    assert [row[3] for row in rows(ingest.path)] == [T0 + LEASE_S * 1.5, T0 + LEASE_S * 2 + 1]

    await dispatch.ack(first, attempt())
    await dispatch.extend([first])  # settled: left alone
    assert rows(ingest.path)[0][2:] == (None, None)
