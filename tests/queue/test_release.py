"""``release``: leased deliveries handed back unattempted, due again, no attempt counted."""

from __future__ import annotations

import pytest

from eventgateway.queue.memory import MemoryQueue
from tests.queue.kit import FakeClock, OpenSqlite, lease, put


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
async def test_release_makes_a_delivery_due_again_without_counting_an_attempt(
    backend: str, open_queue: OpenSqlite, clock: FakeClock
) -> None:
    queue = await open_queue() if backend == "sqlite" else MemoryQueue(clock=clock)
    await put(queue, "e1", "s1")
    (first,) = await lease(queue)

    await queue.release([first], delay_s=5)

    clock.advance(5)
    (again,) = await lease(queue)
    assert (again.id, again.attempt) == (first.id, 0)


async def test_a_stale_lease_releases_nothing(clock: FakeClock) -> None:
    queue = MemoryQueue(clock=clock, lease_s=10)
    await put(queue, "e1", "s1")
    (first,) = await lease(queue)
    clock.advance(11)  # the lease ran out
    (second,) = await lease(queue)

    await queue.release([first])  # the stale lease: the new one stays leased

    await queue.extend([second])
    assert second.lease_until == clock() + 10
