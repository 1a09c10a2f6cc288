"""Redrives and purges of the same dead letters at once, on two instances of one prefix.

QA (3 instances, 200 dead letters, a redrive and a purge at once): the answers added up
(163 redriven + 37 purged) but only 90 events reached the receiver. A purge's mark makes
a later redrive's republish a duplicate (nothing is stored), yet the redrive counted the
letter when its delete of the dead letter beat the purge's, and logged ``Redriven`` with
the mark's sequence: the delivery read ``pending`` until retention logged it delivered.

Every dead letter must end redriven (republished, counted, logged) or purged (counted,
gone), never both, never neither. Needs a NATS server with JetStream at ``NATS_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from eventgateway.queue.jetstream import JetStreamQueue
from tests.queue.kit import DEADLINE_S, MakeJS, attempt, lease, put


async def dead_letters(queue: JetStreamQueue, count: int) -> None:
    for n in range(count):
        await put(queue, f"e{n}", "s1")
    leased: list[Any] = []
    while len(leased) < count:
        leased += await lease(queue, count - len(leased))
    for delivery in leased:
        await queue.dead_letter(delivery, "gave up", attempt("failed", 500))


async def backlog(queue: JetStreamQueue) -> int:
    """Messages in the deliveries stream (deliveries, and any purge mark left behind)."""
    await queue._refresh(force=True)
    return queue.backlog()


def hold_dead_letter_deletes(
    queue: JetStreamQueue, monkeypatch: pytest.MonkeyPatch, until: asyncio.Event
) -> asyncio.Event:
    """``queue``'s deletes of dead letters wait for ``until``; the event returned is set
    when the first one is about to wait."""
    js = queue._js
    assert js is not None
    delete, names, reached = js.delete_msg, queue.names, asyncio.Event()

    async def held(stream: str, seq: int) -> bool:
        if stream == names.deadletters_stream:
            reached.set()
            await asyncio.wait_for(until.wait(), DEADLINE_S)
        return await delete(stream, seq)

    monkeypatch.setattr(js, "delete_msg", held)
    return reached


async def interleaved(
    make: MakeJS,
    monkeypatch: pytest.MonkeyPatch,
    held: Callable[[JetStreamQueue], Awaitable[int]],
    between: Callable[[JetStreamQueue], Awaitable[int]],
) -> tuple[JetStreamQueue, int, int]:
    """One dead letter on two instances, a and b: ``held`` runs on b up to its delete of
    the letter, ``between`` runs on a meanwhile, then b goes on. (a, between's, held's.)"""
    a, b = await make(), await make()
    await dead_letters(a, 1)
    done = asyncio.Event()
    reached = hold_dead_letter_deletes(b, monkeypatch, until=done)
    first = asyncio.create_task(held(b))
    await asyncio.wait_for(reached.wait(), DEADLINE_S)
    meanwhile = await between(a)
    done.set()
    return a, meanwhile, await first


async def test_a_redrive_after_a_purges_mark_takes_nothing_even_if_its_delete_wins(
    make: MakeJS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The purge (on b) has marked the letter and is about to delete it; the redrive (on
    # a) runs in between: its republish is the mark's duplicate, and its delete wins.
    a, redrove, purged = await interleaved(
        make, monkeypatch, held=lambda b: b.purge("acme"), between=lambda a: a.redrive("acme")
    )

    assert (redrove, purged) == (0, 1)  # the mark came first: the purge's
    assert await a.list_dead_letters("acme") == []
    assert await backlog(a) == 0  # nothing republished, and the mark is gone
    assert await a.get_event("acme", "e0") is None  # purged: its history with it


async def test_two_redrives_at_once_count_a_letter_once(
    make: MakeJS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The redrive on b has republished the letter; the one on a runs before b deletes it.
    a, first, second = await interleaved(
        make, monkeypatch, held=lambda b: b.redrive("acme"), between=lambda a: a.redrive("acme")
    )

    assert first + second == 1
    assert await backlog(a) == 1  # stored once
    (again,) = await lease(a)
    await a.ack(again, attempt())
    view = await a.get_event("acme", "e0")
    assert view is not None
    (d,) = view.deliveries
    assert (d.state, d.attempts) == ("delivered", 1)


@pytest.mark.parametrize("purge_first", [False, True])
async def test_a_redrive_and_a_purge_at_once_account_for_every_letter(
    make: MakeJS, purge_first: bool
) -> None:
    # QA's run, smaller: before the fix about half the letters counted as redriven were
    # never republished.
    count = 60
    a, b = await make(), await make()
    await dead_letters(a, count)
    if purge_first:
        purged, redrove = await asyncio.gather(b.purge("acme"), a.redrive("acme"))
    else:
        redrove, purged = await asyncio.gather(a.redrive("acme"), b.purge("acme"))

    assert redrove + purged == count
    assert await a.list_dead_letters("acme") == []
    assert await backlog(a) == redrove  # each redriven letter republished; no mark left
    leased: list[Any] = []
    while len(leased) < redrove:
        leased += await lease(a, count)
    for delivery in leased:
        await a.ack(delivery, attempt())
    states = []
    for n in range(count):
        view = await a.get_event("acme", f"e{n}")
        states.append(None if view is None else view.deliveries[0].state)
    assert states.count("delivered") == redrove
    assert states.count(None) == purged
