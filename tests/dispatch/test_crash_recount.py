"""A dispatcher on JetStream with ``maxAttempts: 2`` does not dead-letter the deliveries
a crashed instance had leased after their first real failed call: their redelivery is
counted by the server as an attempt, so before giving up the dispatcher asks the queue
to ``recount`` them from the delivery log, and retries them. A delivery that really
failed twice is still dead-lettered, with ``attempts`` 2. (QA: 90 of 300 events
dead-lettered after one real call each by one ``kill -9``.) Real NATS, real queues; a
"crash" is a queue that leased and never settles nor renews (only the fixture closes
it)."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher, DispatchHooks
from eventgateway.dispatch.invoke import Outcome
from eventgateway.events.model import CloudEvent
from eventgateway.model.entities import RetryPolicy
from eventgateway.providers.base import Reply
from eventgateway.queue.base import Delivery
from tests.dispatch.kit import policy_table
from tests.queue.kit import SPACE, accepted, jetstream_queues

LEASE_S = 1.0
DEADLINE_S = 15.0
TWO_ATTEMPTS = RetryPolicy(max_attempts=2, initial_delay_ms=100, jitter=False)
FLAKY = [f"c{n}" for n in range(4)]  # abandoned by the crash; their first call fails
BROKEN = ["d0", "f0"]  # every call fails: d0 abandoned by the crash, f0 not


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    """Opened JetStream queues on one fresh prefix; their streams deleted afterwards."""
    async with jetstream_queues(backlog_refresh_s=0.0) as factory:
        yield factory


class FailingFirst:
    """A 500 for each flaky event's first call and for every call of a broken one."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.calls[event.id] += 1
        if event.id in BROKEN or self.calls[event.id] == 1:
            return Outcome(
                ok=False, reply=Reply(status=500, body=b""), error="HTTP 500", retryable=True
            )
        return Outcome(ok=True, reply=Reply(status=200, body=b""))


class Final(DispatchHooks):
    """Each event's final state (``delivered`` or ``dead``); ``done`` once all have one."""

    def __init__(self, expected: int) -> None:
        self.states: dict[str, str] = {}
        self.done = asyncio.Event()
        self._expected = expected

    def after_settle(self, delivery: Delivery, state: str) -> None:
        if state in ("delivered", "dead"):
            self.states[delivery.event.id] = state
            if len(self.states) == self._expected:
                self.done.set()


async def test_a_crashed_instances_leases_are_not_dead_lettered_after_one_call(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = await make(lease_s=LEASE_S)
    # Its pull request outlives the lease: nats-server 2.9.10 can miscount a redelivery
    # that meets an expiring one (docs/cluster.md, "Not done yet").
    survivor = await make(lease_s=LEASE_S, fetch_wait_s=5.0)
    await crashed.accept([accepted(event_id, "s1") for event_id in [*FLAKY, "d0"]])
    abandoned: list[Delivery] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(abandoned) < len(FLAKY) + 1:  # then kill -9: nothing settled, nothing renewed
        assert time.monotonic() < deadline
        abandoned += await crashed.lease(len(FLAKY) + 1 - len(abandoned))
    await survivor.accept([accepted("f0", "s1")])
    invoker, hooks = FailingFirst(), Final(len(FLAKY) + len(BROKEN))
    dispatcher = Dispatcher(survivor, invoker, policy_table(TWO_ATTEMPTS), hooks=hooks)  # type: ignore[arg-type]

    with caplog.at_level(logging.INFO, logger="eventgateway.dispatch.settle_failure"):
        runner = asyncio.create_task(dispatcher.run())
        try:
            await asyncio.wait_for(hooks.done.wait(), DEADLINE_S)
        finally:
            dispatcher.stop()
            await asyncio.wait_for(runner, DEADLINE_S)

    assert hooks.states == {**dict.fromkeys(FLAKY, "delivered"), "d0": "dead", "f0": "dead"}
    assert invoker.calls == dict.fromkeys([*FLAKY, *BROKEN], 2)
    letters = await survivor.list_dead_letters(SPACE)
    assert sorted((d.event_id, d.attempts) for d in letters) == [("d0", 2), ("f0", 2)]
    corrected = [r.getMessage() for r in caplog.records if "never made" in r.getMessage()]
    assert len(corrected) == len(FLAKY) + 2  # each abandoned one's first failure, d0's second
    assert "1 of its 2 counted attempts were never made" in corrected[0]
    view = await survivor.get_event(SPACE, "d0")
    assert view is not None
    (dead,) = view.deliveries  # its attempts numbered as the recount counted them
    assert (dead.state, dead.attempts, [a.attempt for a in dead.attempt_log]) == ("dead", 2, [1, 2])
