"""``JetStreamQueue.recount``: a redelivered message's attempts as the delivery log proves
them (``queue/jetstream_recount.py``). A lease still numbers a delivery by the server's
delivery count; a lease that ran out unattempted (a ``kill -9``-ed instance's fetch) is
no attempt once recounted, one that was attempted keeps its attempt, and past
``UNLOGGED_ALLOWANCE`` unlogged redeliveries do count (the poison guard). Against the real
NATS server with a 1 s ``ack_wait``; a "crash" is an instance that leased and then never
settles nor renews (only the fixture closes it)."""

from __future__ import annotations

import asyncio
import logging
import time

import nats
import pytest

from eventgateway.queue import jetstream_recount
from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.jetstream_history import Accepted, Settled
from eventgateway.queue.jetstream_recount import (
    UNLOGGED_ALLOWANCE,
    attempts_before,
    logged_attempts,
)
from eventgateway.queue.jetstream_wire import Envelope
from tests.queue.kit import NATS_URL, SPACE, MakeJS, accepted, attempt

LEASE_S = 1.0
DEADLINE_S = 10.0  # per wait for a redelivery: a lease (1 s) and then some
GIVE_UP = "max attempts 2 reached: HTTP 500"


async def leased(queue: JetStreamQueue, count: int) -> list[Delivery]:
    """Lease until ``count`` deliveries came, in id order; fails past ``DEADLINE_S``."""
    got: list[Delivery] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"leased {len(got)} of {count} within {DEADLINE_S} s"
        got += await asyncio.wait_for(queue.lease(count - len(got)), left)
    return sorted(got, key=lambda d: int(d.id))


async def waiting(make: MakeJS) -> JetStreamQueue:
    # Its pull request outlives the lease: nats-server 2.9.10 can miscount a redelivery
    # that meets an expiring one (docs/cluster.md, "Not done yet").
    return await make(lease_s=LEASE_S, fetch_wait_s=5.0)


async def numbers(queue: JetStreamQueue, event_id: str) -> tuple[str, int, list[int | None]]:
    """The event view's (state, attempts, logged attempt numbers) of its one delivery."""
    view = await queue.get_event(SPACE, event_id)
    assert view is not None
    (delivery,) = view.deliveries
    return delivery.state, delivery.attempts, [a.attempt for a in delivery.attempt_log]


async def test_a_first_delivery_is_not_looked_up(make: MakeJS, monkeypatch) -> None:
    queue = await make(lease_s=LEASE_S)
    await queue.accept([accepted("e1", "s1")])
    (delivery,) = await leased(queue, 1)

    def no_reads(*args, **kw):
        raise AssertionError("a first delivery needs no read")

    monkeypatch.setattr(jetstream_recount, "scan_from", no_reads)
    assert await queue.recount(delivery) == 0


async def test_deliveries_a_crash_abandoned_are_recounted_as_unattempted(
    make: MakeJS,
) -> None:
    crashed, survivor = await make(lease_s=LEASE_S), await waiting(make)
    await crashed.accept([accepted(f"e{n}", "s1") for n in range(3)])
    first = await leased(crashed, 3)  # fetched, then the instance is kill -9-ed

    again = await leased(survivor, 3)  # after ack_wait

    assert [d.id for d in again] == [d.id for d in first]
    assert [d.attempt for d in again] == [1, 1, 1]  # the lease keeps the server's count
    assert [await survivor.recount(d) for d in again] == [0, 0, 0]
    for delivery in again:  # the dispatcher retries them: numbered by the recount
        await survivor.retry_later(delivery, 0.1, attempt("failed", 500))
    for n in range(3):
        assert await numbers(survivor, f"e{n}") == ("retrying", 1, [1])


async def test_an_attempt_logged_before_the_crash_still_counts(make: MakeJS) -> None:
    crashed, survivor = await make(lease_s=LEASE_S), await waiting(make)
    await crashed.accept([accepted("e1", "s1")])
    (delivery,) = await leased(crashed, 1)
    await crashed.retry_later(delivery, 0.1, attempt("failed", 500))
    (retried,) = await leased(crashed, 1)
    assert retried.attempt == 1
    # Crashes during its second attempt: nothing settled, nothing logged.

    (again,) = await leased(survivor, 1)

    assert again.attempt == 2
    assert await survivor.recount(again) == 1  # the logged first; the cut-off one is free
    await survivor.dead_letter(again, GIVE_UP, attempt("failed", 500))
    (letter,) = await survivor.list_dead_letters(SPACE)
    assert letter.attempts == 2  # the recount's, not the server's 3
    assert await numbers(survivor, "e1") == ("dead", 2, [1, 2])


async def test_unlogged_redeliveries_past_the_allowance_count(make: MakeJS) -> None:
    # A message that takes down every instance mid-attempt (the poison guard).
    first = await make(lease_s=LEASE_S)
    await first.accept([accepted("e1", "s1")])
    seen = [(await leased(first, 1))[0]]
    for _ in range(UNLOGGED_ALLOWANCE + 1):  # each leases it and dies, in turn
        holder = await waiting(make)
        seen += await leased(holder, 1)

    assert [d.attempt for d in seen] == [0, 1, 2, 3]
    assert await holder.recount(seen[-1]) == 1  # the third unlogged redelivery counts
    await holder.dead_letter(seen[-1], GIVE_UP, attempt("failed", 500))
    (letter,) = await holder.list_dead_letters(SPACE)
    assert letter.attempts == 2
    assert await numbers(holder, "e1") == ("dead", 2, [2])


async def test_without_the_event_history_the_server_count_stands(make: MakeJS) -> None:
    # The byte-bounded log dropped the history: the log cannot prove what was made.
    crashed, survivor = await make(lease_s=LEASE_S), await waiting(make)
    await crashed.accept([accepted("e1", "s1")])
    await leased(crashed, 1)
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().purge_stream(crashed.names.log_stream)
    finally:
        await nc.close()

    (again,) = await leased(survivor, 1)

    assert again.attempt == 1
    assert await survivor.recount(again) == 1
    await survivor.dead_letter(again, GIVE_UP, attempt("failed", 500))
    (letter,) = await survivor.list_dead_letters(SPACE)
    assert letter.attempts == 2


async def test_an_unreadable_log_leaves_the_server_count(make: MakeJS, monkeypatch, caplog) -> None:
    crashed, survivor = await make(lease_s=LEASE_S), await waiting(make)
    await crashed.accept([accepted("e1", "s1")])
    await leased(crashed, 1)
    (again,) = await leased(survivor, 1)

    async def unreachable(*args, **kw):
        raise TimeoutError  # what nats-py raises when the server does not answer

    monkeypatch.setattr(jetstream_recount, "scan_from", unreachable)
    with caplog.at_level(logging.INFO, logger=jetstream_recount.__name__):
        assert await survivor.recount(again) == 1
    assert "delivery log unreadable" in caplog.text


async def test_a_recount_is_dropped_with_its_settle_or_hand_back(make: MakeJS) -> None:
    crashed, survivor = await make(lease_s=LEASE_S), await waiting(make)
    await crashed.accept([accepted(f"e{n}", "s1") for n in range(2)])
    await leased(crashed, 2)
    settled, released = await leased(survivor, 2)
    assert [await survivor.recount(d) for d in (settled, released)] == [0, 0]

    await survivor.ack(settled, attempt())
    await survivor.release([released])

    assert not survivor._recounted
    assert await numbers(survivor, "e0") == ("delivered", 1, [1])


# -- the count itself (no server) ----------------------------------------------------------


def records(*settled: Settled, named: str = "7") -> list[Accepted | Settled]:
    accepted_ = Accepted(1.0, SPACE, "src", "e1", "t", "1.0", b"", [(named, "s1", "fn-s1")])
    return [accepted_, *settled]


def tried(seq: int, delivery_id: str = "7", **kw: object) -> Settled:
    logged = (1.0, 10.0, "failed", 500, "boom")
    return Settled(2.0, delivery_id, "pending", logged, seq=seq, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("history", "logged"),
    [
        (records(), 0),
        (records(tried(7), tried(7)), 2),
        (records(tried(9)), 0),  # another message of the delivery (redriven, carried)
        (records(tried(7, "8")), 0),  # another delivery
        (records(tried(7, reconciled=True)), 0),  # reconcile's: no attempt of its own
        (records(tried(7), named="8"), None),  # the delivery's start is gone
        ([tried(7)], None),
    ],
)
def test_logged_attempts_are_those_of_this_message(
    history: list[Accepted | Settled], logged: int | None
) -> None:
    assert logged_attempts(history, "7", 7) == logged


@pytest.mark.parametrize(
    ("before", "delivered", "logged", "counted"),
    [
        (0, 1, 0, 0),
        (0, 3, 0, 0),  # two leases ran out: within the allowance
        (0, 4, 0, 1),
        (0, 6, 1, 3),  # one logged, four unlogged of which two are charged
        (0, 3, 2, 2),
        (0, 2, 5, 1),  # records logged twice make no more than the deliveries
        (3, 2, 0, 3),  # attempts carried over from earlier messages
        (3, 4, None, 6),  # the log cannot tell: the server's count
    ],
)
def test_attempts_before(before: int, delivered: int, logged: int | None, counted: int) -> None:
    envelope = Envelope(SPACE, "s1", "fn-s1", 1.0, b"", attempts_before=before)

    assert attempts_before(envelope, delivered, logged) == counted
