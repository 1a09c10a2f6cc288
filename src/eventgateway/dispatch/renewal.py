"""Lease renewal: a live dispatcher keeps the leases of its long attempts.

A queue's lease (``DeliveryQueue.lease_s``, ``eg serve --lease-timeout``) exists to recover
the deliveries of a *dead* process. An attempt may run far longer (``attemptTimeoutMs`` up
to 15 minutes); were its lease left to run out, the queue would hand the delivery out again
while the first attempt still runs, and the function would get it twice at once. So one
task per dispatcher wakes every ``lease_s / 8`` and renews, in one batched
``DeliveryQueue.extend`` call, every attempt running (or last renewed) ``lease_s / 4`` ago
or more. ``--lease-timeout`` then bounds only how long a crashed process's deliveries wait.

Why a quarter and not a half: a delivery handed over at accept (SQLite, ``--dispatch
worker``) may start its attempt with only half its lease left (``sqlite_handoff.py`` gives
back those held longer), and its first renewal comes at most ``3/8`` of a lease after the
start. Every renewal after that finds a full lease with at least five eighths left.

What it costs a short attempt: one insert into and one removal from a dict (in flight, in
the order they were last renewed). A tick reads that dict from its oldest entry and stops
at the first one not yet due, so it costs nothing while every attempt is short, and never
writes to the queue then.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from eventgateway.queue.base import Delivery, DeliveryQueue

__all__ = ["Attempt", "LeaseRenewer"]

logger = logging.getLogger(__name__)


class Attempt:
    """One leased delivery being attempted (the dispatcher's slot subclasses it)."""

    __slots__ = ("delivery",)

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery


class LeaseRenewer:
    """Renews the leases of the attempts of one dispatcher that run long. See the module.

    Args:
        queue: the queue the deliveries were leased from.
        clock: monotonic seconds.
    """

    def __init__(self, queue: DeliveryQueue, clock: Callable[[], float] = time.monotonic) -> None:
        self._queue = queue
        self.clock = clock
        # In flight, oldest first: attempt -> when it started, or its lease was last renewed.
        self._touched: dict[Attempt, float] = {}
        self._draining = False
        self._idle = asyncio.Event()

    def __len__(self) -> int:
        return len(self._touched)

    def started(self, attempt: Attempt, now: float) -> None:
        """``attempt`` holds a lease taken at ``now`` (this renewer's ``clock``)."""
        self._touched[attempt] = now

    def finished(self, attempt: Attempt) -> None:
        """``attempt`` is settled (or given up): its lease needs no more renewal."""
        touched = self._touched
        touched.pop(attempt, None)
        if self._draining and not touched:
            self._idle.set()

    async def drained(self) -> None:
        """Wait until every started attempt is finished; none may start after this."""
        self._draining = True
        self._idle.clear()  # set by an earlier run's drain, if any
        if self._touched:
            await self._idle.wait()

    async def run(self) -> None:
        """Renew what is due every ``lease_s / 8``, until cancelled."""
        lease_s = self._queue.lease_s
        if not (0 < lease_s < math.inf):
            return  # leases that never run out need no renewal
        while True:
            await asyncio.sleep(lease_s / 8)
            await self.renew_due(lease_s / 4)

    async def renew_due(self, age_s: float) -> int:
        """Renew, in one call, every lease taken or renewed ``age_s`` ago or more; how many.

        A failure (the store is down) is logged, and those leases are tried again on the
        next tick.
        """
        touched = self._touched
        horizon = self.clock() - age_s
        due: list[Attempt] = []
        for attempt, at in touched.items():
            if at > horizon:
                break  # the rest were touched later still
            due.append(attempt)
        if not due:
            return 0
        try:
            await self._queue.extend([attempt.delivery for attempt in due])
        except Exception as exc:  # a renewal failure must not stop deliveries
            logger.warning(
                "renewing the leases of %d long-running deliveries failed (first: delivery %s "
                "of event %s, subscription %s); trying again shortly: %s",
                len(due),
                due[0].delivery.id,
                due[0].delivery.event.id,
                due[0].delivery.subscription_id,
                exc,
            )
            return 0
        # Taken after the call, so the dict stays ordered: whatever started meanwhile
        # started before this.
        now = self.clock()
        for attempt in due:
            if touched.pop(attempt, None) is not None:  # still running: to the end
                touched[attempt] = now
        return len(due)
