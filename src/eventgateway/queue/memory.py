"""``MemoryQueue``: a bounded in-process queue (the original's at-most-once behaviour).

Nothing survives a restart. Used for tests and for subscriptions that choose at-most-once.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import time
from collections.abc import Sequence

from eventgateway.errors import TooManyRequestsError
from eventgateway.queue.base import Delivery, DeliveryQueue

__all__ = ["MemoryQueue"]


class MemoryQueue(DeliveryQueue):
    """A bounded in-memory queue with delayed retries and an in-memory dead-letter list."""

    def __init__(self, max_deliveries: int = 100_000) -> None:
        self._max = max_deliveries
        self._ready: collections.deque[Delivery] = collections.deque()
        self._delayed: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._leased = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dead_letters: list[tuple[Delivery, str]] = []

    def backlog(self) -> int:
        return len(self._ready) + len(self._delayed) + self._leased

    async def put(self, deliveries: Sequence[Delivery]) -> None:
        if self.backlog() + len(deliveries) > self._max:
            raise TooManyRequestsError(
                f"Delivery queue is full ({self._max} deliveries waiting); retry later.",
                retry_after_s=1,
            )
        self._ready.extend(deliveries)
        self._wakeup.set()

    async def lease(self, max_count: int) -> list[Delivery]:
        while not self._closed:
            self._promote_due()
            if self._ready:
                count = min(max_count, len(self._ready))
                batch = [self._ready.popleft() for _ in range(count)]
                self._leased += count
                return batch
            self._wakeup.clear()
            timeout = self._delayed[0][0] - time.monotonic() if self._delayed else None
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass
        return []

    def _promote_due(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            self._ready.append(heapq.heappop(self._delayed)[2])

    async def ack(self, delivery: Delivery) -> None:
        self._leased -= 1

    async def retry_later(self, delivery: Delivery, delay_s: float, error: str) -> None:
        self._leased -= 1
        delivery.attempt += 1
        heapq.heappush(self._delayed, (time.monotonic() + delay_s, next(self._seq), delivery))
        self._wakeup.set()

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._leased -= 1
        self.dead_letters.append((delivery, reason))

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
