"""The keep-alive of fetched-but-not-leased messages on JetStream
(``queue/jetstream_keepalive.py``): it runs without ``lease()`` calls while the queue is
in use, and hands them back once nobody has leased or renewed anything for a lease.

``tests/dispatch/test_saturated_keepalive.py`` covers the first with a real dispatcher."""

from __future__ import annotations

import asyncio

from tests.queue.kit import DEADLINE_S, MakeJS, accepted, attempt

LEASE_S = 1.0


async def test_a_queue_nobody_leases_from_hands_its_fetched_messages_back(make: MakeJS) -> None:
    first = await make(lease_s=LEASE_S)
    await first.accept([accepted(f"e{n}", "busy") for n in range(2)])
    # One slot for "busy": e0 is leased, e1 fetched with it and parked.
    (e0,) = await asyncio.wait_for(first.lease(2, room=lambda _: 1), DEADLINE_S)
    await first.ack(e0, attempt())
    # Nothing leases or renews on ``first`` from here: its dispatcher is gone.
    # Its pull request outlives the hand-back: nats-server 2.9.10 can miscount a
    # redelivery that meets an expiring one (docs/cluster.md, "Not done yet").
    second = await make(lease_s=30.0, fetch_wait_s=DEADLINE_S)
    (e1,) = await asyncio.wait_for(second.lease(10), DEADLINE_S)
    assert e1.event.id == "e1"
    assert e1.attempt == 0  # handed back carried to a new message, no attempt counted
    await second.ack(e1, attempt())
