"""A dead letter keeps its event visible and redrivable after the delivery log dropped the
event's history, on every backend.

What drops history differs: on JetStream the log stream is bounded by bytes
(``max_log_bytes``, ``discard: old``) and drops its oldest records, a dead event's
included; on SQLite and in memory retention does, and it never removes an event with a
dead letter. The test fills the log past the dead event on each, then runs retention.
Needs a NATS server with JetStream at ``NATS_URL`` for the JetStream case.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.log_views import rfc3339
from eventgateway.queue.replay import ReplayTarget
from tests.queue.kit import (
    BACKENDS,
    T0,
    FakeClock,
    MakeQueue,
    Queue,
    accepted,
    attempt,
    lease,
    put,
    queues,
)

LOG_BYTES = 16 * 1024  # JetStream's log: room for a few dozen events' records
ROUND = 20  # events per crowding round
ROUNDS = 50  # ~100x the log's room: ends a crowding that never gets there


@pytest.fixture(params=list(BACKENDS))
async def queue(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, clock: FakeClock
) -> AsyncIterator[Queue]:
    async with queues(request.param, tmp_path, clock) as make:
        yield await opened(make, request.param)


async def opened(make: MakeQueue, backend: str) -> Queue:
    if backend == "jetstream":
        return await make(max_log_bytes=LOG_BYTES)
    return await make()


async def log_edge(queue: Queue) -> tuple[int, int]:
    """JetStream's log stream: (first sequence still kept, last sequence written)."""
    assert isinstance(queue, JetStreamQueue)
    info = await queue._jetstream().stream_info(queue.names.log_stream)
    return info.state.first_seq, info.state.last_seq


async def crowd_out_the_dead_event(queue: Queue, clock: FakeClock) -> None:
    """Deliver other events until the log kept nothing of the dead one, then retention."""
    last_of_dead = (await log_edge(queue))[1] if isinstance(queue, JetStreamQueue) else 0
    for n in range(ROUNDS):
        await queue.accept([accepted(f"ok{n}-{k}", "s1") for k in range(ROUND)])
        for delivery in await lease(queue, ROUND):
            await queue.ack(delivery, attempt())
        if not isinstance(queue, JetStreamQueue) or (await log_edge(queue))[0] > last_of_dead:
            break
    else:
        pytest.fail(f"the log still holds the dead event after {ROUNDS * ROUND} events")
    clock.advance(3600.0)
    await queue.enforce_retention(max_age_s=60.0, max_events=0)


async def dead_event(queue: Queue) -> None:
    await put(queue, "dead", "s1")
    (delivery,) = await lease(queue)
    await queue.dead_letter(delivery, "gave up", attempt("failed", 410, "HTTP 410"))


async def test_a_dead_letter_keeps_its_event_visible_after_the_log_dropped_it(
    queue: Queue, clock: FakeClock
) -> None:
    # Found in review: JetStream's log dropped the history of a dead-lettered event with
    # the rest, and its event view answered 404 while the dead letter was still there.
    await dead_event(queue)
    await crowd_out_the_dead_event(queue, clock)

    view = await queue.get_event("acme", "dead")

    assert view is not None
    assert (view.id, view.source, view.state) == ("dead", "test", "dead")
    (d,) = view.deliveries
    assert (d.subscription_id, d.state, d.attempts) == ("s1", "dead", 1)
    assert (d.dead_reason, d.last_status, d.last_error) == ("gave up", 410, "HTTP 410")
    last = d.attempt_log[-1]
    assert (last.outcome, last.status, last.error) == ("failed", 410, "HTTP 410")
    assert await queue.get_event("acme", "never-accepted") is None


async def test_a_dead_letter_whose_history_was_dropped_is_redriven_and_logged_again(
    queue: Queue, clock: FakeClock
) -> None:
    await dead_event(queue)
    await crowd_out_the_dead_event(queue, clock)
    (letter,) = await queue.list_dead_letters("acme")

    assert await queue.redrive("acme", ids=[letter.dead_letter_id]) == 1
    (again,) = await lease(queue)
    assert (again.id, again.event.id) == (letter.dead_letter_id, "dead")
    await queue.ack(again, attempt())

    view = await queue.get_event("acme", "dead")
    assert view is not None
    (d,) = view.deliveries
    assert (view.state, d.delivery_id, d.state, d.attempts) == (
        "delivered",
        letter.dead_letter_id,
        "delivered",
        1,
    )
    assert d.attempt_log[-1].outcome == "delivered"
    assert await queue.list_dead_letters("acme") == []


async def test_an_event_shown_from_dead_letters_keeps_its_receipt_time_across_a_redrive(
    queue: Queue, clock: FakeClock
) -> None:
    # A redrive counts the retry policy's max age from the redrive (JetStream: the
    # republished message's accepted_at); the event was still received when it was.
    await dead_event(queue)
    clock.advance(1000.0)
    (letter,) = await queue.list_dead_letters("acme")
    assert await queue.redrive("acme", ids=[letter.dead_letter_id]) == 1
    (again,) = await lease(queue)
    await queue.dead_letter(again, "gave up again", attempt("failed", 410, "HTTP 410"))
    await crowd_out_the_dead_event(queue, clock)

    view = await queue.get_event("acme", "dead")

    assert view is not None
    assert (view.state, view.received_at) == ("dead", rfc3339(T0))


async def test_an_event_shown_from_dead_letters_keeps_its_receipt_time_across_a_replay(
    queue: Queue, clock: FakeClock
) -> None:
    await put(queue, "dead", "s1")
    (first,) = await lease(queue)
    await queue.ack(first, attempt())
    clock.advance(1000.0)
    replayed = await queue.replay("acme", ids=["dead"], subscriptions=lambda _: ReplayTarget("s1"))
    assert replayed.replayed == 1
    (again,) = await lease(queue)
    await queue.dead_letter(again, "gave up", attempt("failed", 410, "HTTP 410"))
    await crowd_out_the_dead_event(queue, clock)

    view = await queue.get_event("acme", "dead")

    assert view is not None
    assert (view.state, view.received_at) == ("dead", rfc3339(T0))
