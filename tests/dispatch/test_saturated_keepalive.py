"""Every slot of a dispatcher busy for several leases, with deliveries fetched and waiting
behind them (parked, and an ordered one held): when the slots free, each waiting delivery
gets exactly one attempt, numbered 0, on JetStream as on SQLite.

On JetStream a fetched message stays leased only while something keeps it alive. That used
to happen only inside ``lease()``, which a saturated dispatcher does not call: the waiting
messages ran out of ``ack_wait``, came back with the server's delivery count raised (an
attempt that never happened) and were delivered twice (the stale copy and the redelivery).
"""

from __future__ import annotations

import asyncio
import collections
import pathlib
import time
from types import SimpleNamespace
from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher, DispatchHooks
from eventgateway.dispatch.invoke import Outcome
from eventgateway.events.model import CloudEvent
from eventgateway.providers.base import Reply
from eventgateway.queue.base import AttemptRecord, Delivery
from tests.queue.kit import FakeClock, accepted, queues

DEADLINE_S = 10.0
LEASE_S = 2.0
# How long the first attempts take: several leases, during which nothing else has a slot.
HANG_S = 3 * LEASE_S


class SlowInvoker:
    """The first event of each ``hung*`` subscription takes ``HANG_S`` (a slow endpoint,
    not a test pause); everything else is answered at once."""

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        if event.id in ("h0", "o0"):
            await asyncio.sleep(HANG_S)
        return Outcome(ok=True, reply=Reply(status=200, body=b""))


class Attempts(DispatchHooks):
    """Every attempt's (event id, attempt number); ``changed`` is set on each."""

    def __init__(self) -> None:
        self.seen: dict[str, list[int]] = collections.defaultdict(list)
        self.changed = asyncio.Event()

    def after_attempt(self, delivery: Delivery, record: AttemptRecord) -> None:
        self.seen[delivery.event.id].append(delivery.attempt)
        self.changed.set()

    async def until_all(self, event_ids: set[str]) -> None:
        async def wait() -> None:
            while not event_ids <= self.seen.keys():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), HANG_S + DEADLINE_S)


def routing() -> Any:
    def target(space: str, subscription_id: str) -> Any:
        return SimpleNamespace(
            authorizer_id=None,
            function=SimpleNamespace(function_id=subscription_id),
            subscription=SimpleNamespace(retry_policy=None),
        )

    return SimpleNamespace(target=target, runtime_limits=dict)


# SQLite for comparison: an unleased row is just a row, nothing to keep alive.
@pytest.mark.parametrize("backend", ["sqlite", "jetstream"])
async def test_deliveries_waiting_behind_busy_slots_keep_their_attempt_count(
    backend: str, tmp_path: pathlib.Path
) -> None:
    async with queues(backend, tmp_path, FakeClock()) as make_queue:
        queue = await make_queue(time.time, lease_s=LEASE_S)
        # Stream order: h0 h1 o0 o1 f0 f1. The first lease takes h0 and o0 (one slot per
        # subscription, two in all); h1 waits parked (its subscription is full), o1 held
        # (behind o0, its key's head), and every slot stays busy for HANG_S.
        await queue.accept([accepted(f"h{n}", "hung-a") for n in range(2)])
        await queue.accept([accepted(f"o{n}", "hung-o", key="k") for n in range(2)])
        await queue.accept([accepted(f"f{n}", "fine") for n in range(2)])
        attempts = Attempts()
        dispatcher = Dispatcher(
            queue,
            SlowInvoker(),  # type: ignore[arg-type]
            routing,
            concurrency=2,
            per_subscription=1,
            hooks=attempts,
        )
        runner = asyncio.create_task(dispatcher.run())
        try:
            await attempts.until_all({"h0", "h1", "o0", "o1", "f0", "f1"})
        finally:
            dispatcher.stop()
            await asyncio.wait_for(runner, HANG_S + DEADLINE_S)
        assert dict(attempts.seen) == {
            "h0": [0],
            "h1": [0],
            "o0": [0],
            "o1": [0],
            "f0": [0],
            "f1": [0],
        }
