"""A blocked subscription's backlog shared with instances that have room for it on
JetStream (``queue/jetstream_share.py``): carried to the stream when another instance
says it would start some now, attempts kept, moved at most ``MAX_SHARES`` times."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from nats.aio.msg import Msg

from eventgateway.events.codec import decode_event, encode_event
from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.jetstream_share import MAX_SHARES, SHARE_KEEP
from eventgateway.queue.jetstream_wire import Envelope
from tests.queue.kit import DEADLINE_S, SPACE, MakeJS, accepted, attempt, event

BACKLOG = 12


async def _blocked_backlog(queue: JetStreamQueue) -> Delivery:
    """Accept a backlog for "slow" and lease one of it with room for one: the rest
    waits parked here, its subscription blocked."""
    await queue.accept([accepted(f"e{n}", "slow") for n in range(BACKLOG)])
    (running,) = await asyncio.wait_for(queue.lease(BACKLOG, room=lambda _: 1), DEADLINE_S)
    return running


async def _blocked_lease(queue: JetStreamQueue) -> asyncio.Task[list[Delivery]]:
    """A lease on ``queue`` while "slow" has no room: it finds the backlog blocked (and
    offers it every 0.1 s)."""
    queue._share_every_s = 0.1
    return asyncio.create_task(queue.lease(10, room=lambda _: 0))


async def test_an_idle_instance_takes_over_a_blocked_backlog(make: MakeJS) -> None:
    busy = await make(lease_s=30.0)
    running = await _blocked_backlog(busy)
    await busy.retry_later(running, 0.0, attempt("failed", 503))  # attempts are kept
    idle = await make(lease_s=30.0, fetch_wait_s=DEADLINE_S)
    blocked = await _blocked_lease(busy)

    taken: list[Delivery] = []
    deadline = time.monotonic() + 4 * DEADLINE_S
    while len(taken) < BACKLOG - SHARE_KEEP - 1:  # all but what "busy" keeps for itself
        assert time.monotonic() < deadline, f"only {len(taken)} shared"
        got = await asyncio.wait_for(idle.lease(1, room=lambda _: 1), DEADLINE_S)
        for delivery in got:
            await idle.ack(delivery, attempt())
        taken += got
    blocked.cancel()

    ids = [d.event.id for d in taken]
    assert len(set(ids)) == len(ids)
    assert {d.attempt for d in taken if d.event.id != running.event.id} == {0}
    shared = next(d for d in taken if d.event.id != running.event.id)
    view = await idle.get_event(SPACE, shared.event.id)
    assert view is not None
    [shown] = view.deliveries
    assert (shown.state, shown.attempts) == ("delivered", 1)
    assert busy._shared >= len(taken) - 1  # the retried one may have come back by itself


async def _offers_made(queues: list[JetStreamQueue], count: int) -> None:
    """Wait until each of ``queues`` offered its backlog ``count`` more times."""
    start = [q._offers for q in queues]
    deadline = time.monotonic() + 4 * DEADLINE_S
    while any(q._offers < s + count for q, s in zip(queues, start, strict=True)):
        assert time.monotonic() < deadline, "no offers made"
        await asyncio.sleep(0.05)


async def test_a_lone_instance_shares_nothing(make: MakeJS) -> None:
    queue = await make(lease_s=30.0)
    await _blocked_backlog(queue)
    blocked = await _blocked_lease(queue)
    await _offers_made([queue], 3)  # each asked, and nobody but itself heard it
    blocked.cancel()
    assert queue._shared == 0
    assert len(queue._parked) == BACKLOG - 1


async def test_instances_without_room_take_nothing(make: MakeJS) -> None:
    # Both blocked for "slow" (each leasing, so each has a pull request waiting): neither
    # has room for it, so nothing moves.
    first = await make(lease_s=30.0)
    await _blocked_backlog(first)
    second = await make(lease_s=30.0, fetch_wait_s=DEADLINE_S)
    leases = [await _blocked_lease(first), await _blocked_lease(second)]
    await _offers_made([first], 3)
    for lease in leases:
        lease.cancel()
    assert first._shared == 0
    assert len(first._parked) == BACKLOG - 1


async def _publish(queue: JetStreamQueue, event_id: str, **moves: Any) -> None:
    """Put a delivery for "slow" on the stream as an earlier share left it."""
    assert queue._js is not None
    envelope = Envelope(SPACE, "slow", "fn-slow", time.time(), encode_event(event(event_id)))
    envelope = msgspec.structs.replace(envelope, **moves)
    await queue._js.publish(queue.names.deliveries_subject, msgspec.msgpack.encode(envelope))


async def test_a_delivery_moves_at_most_max_shares_times(make: MakeJS) -> None:
    sharer = await make(lease_s=30.0)
    sharer._id = "sharer"
    for n in range(1 + SHARE_KEEP):  # one to run, the ones it keeps
        await _publish(sharer, f"k{n}")
    # Moved twice already, the last time by another instance: it stays.
    await _publish(sharer, "spent", shares=MAX_SHARES, shared_by="other")
    # Moved twice, the last share this instance's own, which came back to it: that one
    # moved nothing, so it may go once more, still counted twice.
    await _publish(sharer, "back", shares=MAX_SHARES, shared_by="sharer")
    await asyncio.wait_for(sharer.lease(10, room=lambda _: 1), DEADLINE_S)
    taker = await make(lease_s=30.0, fetch_wait_s=DEADLINE_S)
    leases = [await _blocked_lease(sharer), await _blocked_lease(taker)]
    taker._room_for = lambda _: 5  # type: ignore[method-assign]  # says so, takes none
    try:
        deadline = time.monotonic() + 4 * DEADLINE_S
        while not any(_envelope(m).shared_by == "sharer" for m, _ in taker._parked.values()):
            assert time.monotonic() < deadline, "'back' never reached the other instance"
            await asyncio.sleep(0.05)
        await _offers_made([sharer], 3)
    finally:
        for lease in leases:
            lease.cancel()

    where = {
        _event_id(msg): (name, _envelope(msg).shares)
        for name, queue in (("sharer", sharer), ("taker", taker))
        for msg, _ in queue._parked.values()
    }
    assert where["spent"] == ("sharer", MAX_SHARES)
    assert where["back"] == ("taker", MAX_SHARES)
    assert len(where) == 2 + SHARE_KEEP  # nothing lost, nothing duplicated


def _envelope(msg: Msg) -> Envelope:
    return msgspec.msgpack.decode(msg.data, type=Envelope)


def _event_id(msg: Msg) -> str:
    return decode_event(_envelope(msg).event).id
