"""Blocked subscriptions' parked messages set aside on JetStream
(``queue/jetstream_aside.py``): the lease fetches past them, reads their events back once
the subscription has room, and gives them back on close, all without raising their
attempt numbers."""

from __future__ import annotations

import asyncio
import time

from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream import JetStreamQueue
from tests.queue.kit import DEADLINE_S, MakeJS, accepted, attempt

BUSY = 600  # well past what a blocked subscription keeps whole


async def _backlog(queue: JetStreamQueue) -> None:
    await queue.accept([accepted(f"b{n}", "busy") for n in range(BUSY)])
    await queue.accept([accepted(f"o{n}", "other") for n in range(3)])


async def _lease_all(queue: JetStreamQueue, count: int, room: int) -> list[Delivery]:
    got: list[Delivery] = []
    while len(got) < count:
        got += await asyncio.wait_for(
            queue.lease(room, exclude={"other"}, room=lambda _: room), DEADLINE_S
        )
    return got


async def test_the_lease_fetches_past_a_blocked_subscription_and_reads_it_back_later(
    make: MakeJS,
):
    queue = await make(lease_s=30.0)
    queue._max_parked = 100  # the busy backlog is many times the parked bound
    await _backlog(queue)

    others = await asyncio.wait_for(queue.lease(10, exclude={"busy"}), DEADLINE_S)

    assert [d.event.id for d in others] == ["o0", "o1", "o2"]
    aside = [queue._parked[seq][0] for seq in queue._aside]
    assert aside  # what each keeps in memory meanwhile: neither its event nor its headers
    assert {(msg.data, msg.headers) for msg in aside} == {(b"", None)}
    busy = await _lease_all(queue, BUSY, room=64)
    assert sorted(d.event.id for d in busy) == sorted(f"b{n}" for n in range(BUSY))
    assert {d.attempt for d in busy} == {0}  # set aside, never redelivered


async def test_set_aside_messages_are_given_back_on_close(make: MakeJS):
    first = await make(lease_s=30.0)
    first._max_parked = 100
    await _backlog(first)
    await asyncio.wait_for(first.lease(10, exclude={"busy"}), DEADLINE_S)

    await first.close()
    second = await make(lease_s=30.0)

    # At once, not after the 30 s lease: close gave them back, carried to new messages
    # with their attempts (a nak would have counted one each: queue/jetstream_carry.py).
    busy = await _lease_all(second, BUSY, room=BUSY)
    assert sorted(d.event.id for d in busy) == sorted(f"b{n}" for n in range(BUSY))
    assert {d.attempt for d in busy} == {0}


async def test_set_aside_messages_keep_their_lease_while_others_flow(make: MakeJS):
    queue = await make(lease_s=1.5)
    queue._max_parked = 100
    await _backlog(queue)
    await asyncio.wait_for(queue.lease(10, exclude={"busy"}), DEADLINE_S)

    # Other deliveries keep every lease busy for two leases' time: the lease never
    # waits long enough to time out, and the busy ones must be kept alive all the same.
    end = time.monotonic() + 2 * queue.lease_s
    n = 0
    while time.monotonic() < end:
        n += 1
        await queue.accept([accepted(f"x{n}", "other")])
        for delivery in await asyncio.wait_for(queue.lease(10, exclude={"busy"}), DEADLINE_S):
            await queue.ack(delivery, attempt())

    busy = await _lease_all(queue, BUSY, room=64)
    assert {d.attempt for d in busy} == {0}  # none ran out of its lease and came back
