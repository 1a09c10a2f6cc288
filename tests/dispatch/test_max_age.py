"""``maxAgeSeconds`` bounds when a retry would start, counted from when the failed attempt
ended: a long attempt must not push the next one past the maximum age."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Outcome
from eventgateway.events.model import CloudEvent
from eventgateway.model.entities import RetryPolicy
from eventgateway.queue.base import Accepted, NewDelivery
from eventgateway.queue.memory import MemoryQueue
from tests.dispatch.kit import Settled, policy_table, run_until
from tests.queue.kit import T0, FakeClock

DEADLINE_S = 5.0
# Max age 100 s, retries 1 s apart; the attempt starts when the event is 90 s old.
POLICY = RetryPolicy(max_age_s=100, initial_delay_ms=1000, jitter=False, attempt_timeout_ms=900_000)


class SlowFailingInvoker:
    """Each attempt takes ``duration_s`` of the fake clock, then fails (retryable)."""

    def __init__(self, clock: FakeClock, duration_s: float) -> None:
        self.clock = clock
        self.duration_s = duration_s

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.clock.advance(self.duration_s)
        return Outcome(ok=False, reply=None, error="timed out", retryable=True)


@pytest.mark.parametrize(
    ("attempt_s", "state"),
    [
        (5.0, "retrying"),  # ends at 95 s: the retry would start at 96 s
        (100.0, "dead"),  # ends at 190 s: a retry would start past the max age
    ],
)
async def test_max_age_counts_to_when_the_retry_would_start(attempt_s: float, state: str) -> None:
    clock = FakeClock(T0)
    queue = MemoryQueue(clock=clock)
    event = CloudEvent(id="e1", source="/t", type="t", specversion="1.0", data={})
    await queue.accept([Accepted(event, [NewDelivery("s", "sub", "sub")])])
    clock.advance(90.0)
    hooks = Settled()
    invoker = SlowFailingInvoker(clock, attempt_s)
    dispatcher = Dispatcher(queue, invoker, policy_table(POLICY), hooks=hooks, clock=clock)  # type: ignore[arg-type]
    await run_until(dispatcher, hooks.changed, DEADLINE_S)
    assert hooks.states == [state]
    if state == "dead":
        (dead,) = await queue.list_dead_letters("s")
        assert "max age 100 s exceeded" in dead.reason
