"""A blocked subscription's backlog shared with idle instances on JetStream
(``queue/jetstream_share.py``): carried to the stream when another instance waits with
free slots, attempts kept, at most ``MAX_SHARES`` times per delivery."""

from __future__ import annotations

import asyncio
import time

import msgspec

from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.jetstream_share import MAX_SHARES, SHARE_KEEP
from eventgateway.queue.jetstream_wire import Envelope
from tests.queue.kit import DEADLINE_S, SPACE, MakeJS, accepted, attempt

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
    await _offers_made([queue], 3)  # each asked how many wait, and found none but its own
    blocked.cancel()
    assert queue._shared == 0
    assert len(queue._parked) == BACKLOG - 1


async def test_a_delivery_is_shared_at_most_max_shares_times(make: MakeJS) -> None:
    # Two instances, both blocked for "slow": what one shares lands on the other (or back
    # on itself), which may share it on, until each was shared MAX_SHARES times.
    first = await make(lease_s=30.0)
    await _blocked_backlog(first)
    second = await make(lease_s=30.0, fetch_wait_s=DEADLINE_S)
    queues = [first, second]
    leases = [await _blocked_lease(first), await _blocked_lease(second)]
    try:
        deadline = time.monotonic() + 8 * DEADLINE_S
        while True:
            shared = first._shared + second._shared
            await asyncio.sleep(1.0)  # ten offer intervals
            if first._shared + second._shared == shared:
                break  # nothing moved in all that time
            assert time.monotonic() < deadline, "still sharing"
    finally:
        for lease in leases:
            lease.cancel()

    assert shared > 0
    parked = [msg for q in queues for msg, _ in q._parked.values()]
    assert len(parked) == BACKLOG - 1  # nothing lost, nothing duplicated
    # Moves to another instance, that is (one back to its own sharer is not counted).
    decode = msgspec.msgpack.Decoder(Envelope).decode
    assert max(decode(msg.data).shares for msg in parked) <= MAX_SHARES
