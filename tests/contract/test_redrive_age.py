"""A redriven dead letter's maximum age (``maxAgeSeconds``) counts from the redrive, as a
replayed delivery's counts from the replay, on every backend in ``BACKENDS`` (JetStream on
the real server, each queue on a prefix of its own whose streams are deleted afterwards).

Counted from the event's arrival, a dead letter older than the maximum age would get one
attempt when redriven and die again."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Outcome
from eventgateway.events.model import CloudEvent
from eventgateway.model.entities import RetryPolicy
from eventgateway.providers.base import Reply
from tests.dispatch.kit import Settled, policy_table, run_until_final
from tests.queue.kit import (
    DEADLINE_S,
    T0,
    FakeClock,
    Queue,
    attempt,
    lease,
    put,
    queues,
)

# Retries at once (a fake clock does not move by itself; JetStream's nak delay is the
# server's), within a maximum age of 100 s.
POLICY = RetryPolicy(max_attempts=10, max_age_s=100, initial_delay_ms=0, jitter=False)
ATTEMPT_S = 10.0  # each attempt takes this long on the fake clock
OLDER_THAN_MAX_AGE_S = 1000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "jetstream"])
async def queue(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, clock: FakeClock
) -> AsyncIterator[Queue]:
    async with queues(request.param, tmp_path, clock) as make:
        yield await make()


async def a_dead_letter(queue: Queue) -> str:
    """Event e1's delivery to s1, dead-lettered at once; its id."""
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    await queue.dead_letter(delivery, "gave up", attempt("failed", 503, "HTTP 503"))
    return delivery.id


async def test_a_redriven_delivery_ages_from_the_redrive(queue: Queue, clock: FakeClock) -> None:
    letter = await a_dead_letter(queue)
    clock.advance(OLDER_THAN_MAX_AGE_S)

    assert await queue.redrive("acme", ids=[letter]) == 1

    (again,) = await lease(queue)
    assert (again.id, again.accepted_at) == (letter, T0 + OLDER_THAN_MAX_AGE_S)


class FailingThenFine:
    """The endpoint: its first ``failures`` calls fail (retryable), the rest succeed; each
    takes ``ATTEMPT_S`` of the fake clock."""

    def __init__(self, clock: FakeClock, failures: int) -> None:
        self.clock = clock
        self.failures = failures
        self.calls = 0

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.calls += 1
        self.clock.advance(ATTEMPT_S)
        if self.calls <= self.failures:
            return Outcome(
                ok=False, reply=Reply(status=503, body=b""), error="HTTP 503", retryable=True
            )
        return Outcome(ok=True, reply=Reply(status=200, body=b""))


async def test_a_dead_letter_older_than_max_age_gets_its_retries_when_redriven(
    queue: Queue, clock: FakeClock
) -> None:
    letter = await a_dead_letter(queue)
    clock.advance(OLDER_THAN_MAX_AGE_S)
    assert await queue.redrive("acme", ids=[letter]) == 1
    endpoint = FailingThenFine(clock, failures=2)
    hooks = Settled()
    dispatcher = Dispatcher(queue, endpoint, policy_table(POLICY), hooks=hooks, clock=clock)  # type: ignore[arg-type]
    await run_until_final(dispatcher, hooks, DEADLINE_S)

    assert (hooks.states, endpoint.calls) == (["retrying", "retrying", "delivered"], 3)
    assert await queue.list_dead_letters("acme") == []
    view = await queue.get_event("acme", "e1")
    assert view is not None
    (d,) = view.deliveries
    assert (d.delivery_id, d.state) == (letter, "delivered")
    assert [a.outcome for a in d.attempt_log] == ["failed", "failed", "failed", "delivered"]
