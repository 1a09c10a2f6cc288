"""One DeliveryLog contract, run against every backend (``BACKENDS`` in tests/queue/kit.py):
the event view with every attempt, listings, dead letters, redrive, purge, retention."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import msgspec
import pytest

from eventgateway.events.codec import encode_event
from eventgateway.queue.base import Delivery
from eventgateway.queue.log_views import AttemptView, DeadLetter, DeliveryView, EventView
from tests.queue.kit import (
    BACKENDS,
    DEADLINE_S,
    T0,
    FakeClock,
    MakeQueue,
    Queue,
    attempt,
    event,
    put,
    queues,
)

T0_TEXT = "2023-11-14T22:13:20Z"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


_STREAM_BYTES = "JetStream bounds stream bytes: one event copy per delivery, headers included"

# Where the JetStream queue differs from the contract, and why (docs/cluster.md).
JETSTREAM_GAPS: dict[str, tuple[str, str]] = {
    "test_redrive_puts_an_ordered_delivery_back_in_front_of_its_key": (
        "xfail",
        "a redriven ordered delivery is a new message on its key's subject, so it goes "
        "behind the newer ones (docs/cluster.md)",
    ),
    "test_redrive_by_filter_or_all": ("xfail", _STREAM_BYTES),
    "test_stats_report_backlog_and_bytes": ("xfail", _STREAM_BYTES),
}


@pytest.fixture(params=list(BACKENDS))
async def make_queue(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, clock: FakeClock
) -> AsyncIterator[MakeQueue]:
    gap = JETSTREAM_GAPS.get(request.node.originalname) if request.param == "jetstream" else None
    if gap is not None:
        kind, reason = gap
        if kind == "skip":
            pytest.skip(reason)
        # An ordering test may pass by the luck of lease order; the others must fail.
        strict = not reason.startswith("per-key ordering")
        request.applymarker(pytest.mark.xfail(reason=reason, strict=strict))
    async with queues(request.param, tmp_path, clock) as make:
        yield make


@pytest.fixture
async def queue(make_queue: MakeQueue) -> Queue:
    return await make_queue()


async def lease(queue: Queue, max_count: int = 100) -> list[Delivery]:
    return await asyncio.wait_for(queue.lease(max_count), DEADLINE_S)


async def dead(
    queue: Queue, event_id: str, *subscriptions: str, reason: str = "gave up", space: str = "acme"
) -> None:
    """Accept an event and dead-letter each of its deliveries after one failed attempt."""
    await put(queue, event_id, *subscriptions, space=space)
    for delivery in await lease(queue):
        await queue.dead_letter(
            delivery, reason, attempt("failed", 410, "HTTP 410", excerpt="gone")
        )


# -- one event ------------------------------------------------------------------------------


async def test_event_view_shows_every_delivery_and_attempt(queue: Queue, clock: FakeClock) -> None:
    await put(queue, "e1", "s1", "s2")
    a, b = await lease(queue)
    await queue.ack(a, attempt(started_at=T0 + 1, duration_s=0.25))
    await queue.retry_later(b, 30.0, attempt("failed", 503, "HTTP 503", started_at=T0 + 2))

    view = await queue.get_event("acme", "e1")

    assert view == EventView(
        id="e1",
        source="test",
        type="user.created",
        specversion="1.0",
        received_at=T0_TEXT,
        state="retrying",
        event=msgspec.Raw(encode_event(event("e1"))),
        deliveries=[
            DeliveryView(
                delivery_id=a.id,
                subscription_id="s1",
                function_id="fn-s1",
                state="delivered",
                attempts=1,
                next_attempt_at=None,
                last_status=200,
                attempt_log=[
                    AttemptView(
                        attempt=1,
                        started_at="2023-11-14T22:13:21Z",
                        duration_ms=250.0,
                        outcome="delivered",
                        status=200,
                    )
                ],
            ),
            DeliveryView(
                delivery_id=b.id,
                subscription_id="s2",
                function_id="fn-s2",
                state="retrying",
                attempts=1,
                next_attempt_at="2023-11-14T22:13:50Z",
                last_status=503,
                last_error="HTTP 503",
                attempt_log=[
                    AttemptView(
                        attempt=1,
                        started_at="2023-11-14T22:13:22Z",
                        duration_ms=250.0,
                        outcome="failed",
                        status=503,
                        error="HTTP 503",
                    )
                ],
            ),
        ],
    )


async def test_event_view_wire_names_are_camel_case(queue: Queue) -> None:
    await put(queue, "e1", "s1")

    wire = msgspec.json.decode(msgspec.json.encode(await queue.get_event("acme", "e1")))

    assert sorted(wire) == [
        "deliveries", "event", "id", "receivedAt", "source", "specversion", "state", "type"
    ]  # fmt: skip
    assert sorted(wire["deliveries"][0]) == [
        "attemptLog", "attempts", "deadReason", "deliveryId", "functionId", "lastError",
        "lastStatus", "nextAttemptAt", "replayOf", "state", "subscriptionId",
    ]  # fmt: skip
    assert wire["event"]["data"] == {"n": "e1"}


async def test_event_view_is_scoped_to_its_space(queue: Queue) -> None:
    await put(queue, "e1", "s1")

    assert await queue.get_event("globex", "e1") is None
    assert await queue.get_event("acme", "nope") is None


async def test_event_state_is_its_worst_delivery(queue: Queue) -> None:
    await put(queue, "e1", "s1", "s2", "s3")
    assert (await queue.get_event("acme", "e1")).state == "pending"  # type: ignore[union-attr]
    a, b, c = await lease(queue)

    await queue.ack(a, attempt())
    assert (await queue.get_event("acme", "e1")).state == "pending"  # type: ignore[union-attr]
    await queue.retry_later(b, 5.0, attempt("failed", 500))
    assert (await queue.get_event("acme", "e1")).state == "retrying"  # type: ignore[union-attr]
    await queue.dead_letter(c, "gave up", None)
    assert (await queue.get_event("acme", "e1")).state == "dead"  # type: ignore[union-attr]


async def test_next_attempt_is_unknown_while_in_flight_or_held_by_ordering(queue: Queue) -> None:
    await put(queue, "a1", "s1", key="k")
    await put(queue, "a2", "s1", key="k")
    await lease(queue)

    held = await queue.get_event("acme", "a2")
    in_flight = await queue.get_event("acme", "a1")

    assert held is not None
    assert in_flight is not None
    assert held.deliveries[0].next_attempt_at is None
    assert in_flight.deliveries[0].next_attempt_at is None


# -- listing --------------------------------------------------------------------------------


async def test_list_events_newest_first_in_pages(queue: Queue) -> None:
    for n in range(5):
        await put(queue, f"e{n}", "s1")

    page = await queue.list_events("acme", limit=2)
    after = await queue.list_events("acme", limit=10, before_seq=page[-1].seq)

    assert [s.id for s in page] == ["e4", "e3"]
    assert [s.id for s in after] == ["e2", "e1", "e0"]
    assert (page[0].source, page[0].type, page[0].received_at) == ("test", "user.created", T0_TEXT)
    assert (page[0].state, page[0].deliveries) == ("pending", 1)


async def test_list_events_filters_by_state_subscription_and_space(queue: Queue) -> None:
    await put(queue, "ok", "s1")
    await put(queue, "bad", "s1", "s2")
    await put(queue, "elsewhere", "s1", space="globex")
    ok, bad1, bad2 = await lease(queue, 3)
    await queue.ack(ok, attempt())
    await queue.ack(bad1, attempt())
    await queue.dead_letter(bad2, "gave up", None)

    dead = await queue.list_events("acme", state="dead")
    delivered = await queue.list_events("acme", state="delivered")
    to_s1 = await queue.list_events("acme", subscription_id="s1")

    assert [(s.id, s.deliveries) for s in dead] == [("bad", 2)]
    assert [s.id for s in delivered] == ["ok"]
    assert [(s.id, s.state, s.deliveries) for s in to_s1] == [
        ("bad", "delivered", 1),
        ("ok", "delivered", 1),
    ]
    assert [s.id for s in await queue.list_events("globex")] == ["elsewhere"]


# -- dead letters -------------------------------------------------------------------------------


async def test_dead_letter_keeps_reason_status_excerpt_and_event(
    queue: Queue, clock: FakeClock
) -> None:
    clock.advance(10.0)
    await dead(queue, "e1", "s1", reason="max attempts (25) reached")

    (letter,) = await queue.list_dead_letters("acme")

    assert letter == DeadLetter(
        dead_letter_id=letter.dead_letter_id,
        subscription_id="s1",
        function_id="fn-s1",
        event_id="e1",
        reason="max attempts (25) reached",
        attempts=1,
        last_status=410,
        response_excerpt="gone",
        dead_at="2023-11-14T22:13:30Z",
        event=msgspec.Raw(encode_event(event("e1"))),
    )
    assert await queue.get_dead_letter("acme", letter.dead_letter_id) == letter
    assert await queue.get_dead_letter("globex", letter.dead_letter_id) is None
    assert await queue.get_dead_letter("acme", "not-an-id") is None


async def test_dead_letters_filter_by_subscription_and_time(queue: Queue, clock: FakeClock) -> None:
    await dead(queue, "e1", "s1")
    clock.advance(60.0)
    await dead(queue, "e2", "s1", "s2")
    await dead(queue, "e3", "s1", space="globex")

    newest_first = await queue.list_dead_letters("acme")
    recent = await queue.list_dead_letters("acme", since=T0 + 60)
    older = await queue.list_dead_letters("acme", until=T0 + 60)
    to_s2 = await queue.list_dead_letters("acme", subscription_id="s2")

    assert [(d.event_id, d.subscription_id) for d in newest_first] == [
        ("e2", "s2"),
        ("e2", "s1"),
        ("e1", "s1"),
    ]
    assert [d.event_id for d in recent] == ["e2", "e2"]
    assert [d.event_id for d in older] == ["e1"]
    assert [(d.event_id, d.subscription_id) for d in to_s2] == [("e2", "s2")]
    assert len(await queue.list_dead_letters("acme", limit=1)) == 1


async def test_redrive_makes_a_dead_letter_pending_with_attempts_reset(queue: Queue) -> None:
    await dead(queue, "e1", "s1")
    (letter,) = await queue.list_dead_letters("acme")
    waiting = asyncio.create_task(queue.lease(10))
    await asyncio.sleep(0)

    assert await queue.redrive("acme", ids=[letter.dead_letter_id]) == 1

    (again,) = await asyncio.wait_for(waiting, DEADLINE_S)
    assert (again.id, again.attempt) == (letter.dead_letter_id, 0)
    assert await queue.list_dead_letters("acme") == []
    assert queue.backlog() == 1
    await queue.ack(again, attempt())
    view = await queue.get_event("acme", "e1")
    assert view is not None
    assert [(a.attempt, a.outcome) for a in view.deliveries[0].attempt_log] == [
        (1, "failed"),
        (2, "delivered"),
    ]
    assert (view.state, view.deliveries[0].dead_reason) == ("delivered", "")


async def test_redrive_by_filter_or_all(queue: Queue) -> None:
    await dead(queue, "e1", "s1", "s2")
    await dead(queue, "e2", "s1")
    await dead(queue, "e3", "s1", space="globex")

    assert await queue.redrive("acme", subscription_id="s2") == 1
    assert await queue.redrive("acme") == 2
    assert await queue.redrive("acme") == 0
    assert await queue.redrive("acme", ids=["bogus"]) == 0
    assert queue.backlog() == 3
    assert queue.stats()["bytes"] == 2 * len(encode_event(event("e1")))


@pytest.mark.parametrize("other", ["redrive", "purge"])
async def test_calls_racing_over_the_same_dead_letters_all_complete(
    queue: Queue, other: str
) -> None:
    # QA, on JetStream: the call that found a dead letter gone (taken by the other)
    # failed whole (500) and left most of its dead letters behind.
    for n in range(30):
        await dead(queue, f"e{n}", "s1")
    letters = await queue.list_dead_letters("acme")
    some = [letter.dead_letter_id for letter in letters[:10]]

    by_ids, everything = await asyncio.gather(
        queue.redrive("acme", ids=some),
        queue.redrive("acme") if other == "redrive" else queue.purge("acme"),
    )

    assert await queue.list_dead_letters("acme") == []
    if other == "redrive":
        assert queue.backlog() == 30  # each redriven once
        assert 30 <= by_ids + everything <= 40  # a letter both took may count twice
    else:
        assert queue.backlog() == by_ids  # what the purge did not take was redriven
        assert 0 <= by_ids <= 10
        # QA (JetStream): a letter both took was delivered again with its history erased.
        back = await lease(queue) if by_ids else []
        assert len(back) == by_ids
        for delivery in back:
            view = await queue.get_event("acme", delivery.event.id)
            assert view is not None, delivery.event.id
            assert [d.state for d in view.deliveries] == ["pending"]


async def test_redrive_puts_an_ordered_delivery_back_in_front_of_its_key(queue: Queue) -> None:
    await put(queue, "a1", "s1", key="k")
    await put(queue, "a2", "s1", key="k")
    (a1,) = await lease(queue)
    await queue.dead_letter(a1, "gave up", None)
    (a2,) = await lease(queue)
    await queue.retry_later(a2, 30.0, attempt("failed", 500))

    await queue.redrive("acme")

    assert [d.event.id for d in await lease(queue)] == ["a1"]


async def test_purge_deletes_dead_letters_and_events_left_without_deliveries(
    queue: Queue,
) -> None:
    await dead(queue, "e1", "s1")
    await put(queue, "e2", "s1", "s2")
    _, b = await lease(queue)
    await queue.dead_letter(b, "gave up", None)
    _first, second = await queue.list_dead_letters("acme")

    assert await queue.purge("acme", ids=[second.dead_letter_id]) == 1
    assert await queue.get_event("acme", "e1") is None
    assert await queue.purge("globex") == 0
    assert await queue.purge("acme") == 1
    view = await queue.get_event("acme", "e2")
    assert view is not None
    assert [d.subscription_id for d in view.deliveries] == ["s1"]


@pytest.mark.parametrize("letter_id", [str(2**63), "9" * 19, "1" * 5000, "²", "-1"])
async def test_ids_no_dead_letter_can_have_name_none(queue: Queue, letter_id: str) -> None:
    # Found by schemathesis: 2**63 reached SQLite and failed as a 500.
    await dead(queue, "e1", "s1")

    assert await queue.get_dead_letter("acme", letter_id) is None
    assert await queue.purge("acme", ids=[letter_id]) == 0
    assert await queue.redrive("acme", ids=[letter_id]) == 0
    assert len(await queue.list_dead_letters("acme")) == 1


# -- retention ------------------------------------------------------------------------------------


async def test_retention_deletes_old_delivered_history_only(queue: Queue, clock: FakeClock) -> None:
    await put(queue, "delivered", "s1")
    await put(queue, "pending", "s1")
    await put(queue, "retrying", "s1")
    done, _, failing = await lease(queue)
    await queue.ack(done, attempt())
    await queue.retry_later(failing, 10.0, attempt("failed", 500))
    await dead(queue, "dead", "s1")
    clock.advance(101.0)
    await dead(queue, "recent", "s1")

    assert await queue.enforce_retention(max_age_s=100.0, max_events=1000) == 1

    remaining = {s.id for s in await queue.list_events("acme")}
    assert remaining == {"pending", "retrying", "dead", "recent"}


async def test_retention_keeps_the_newest_events_by_count(queue: Queue) -> None:
    for n in range(4):
        await put(queue, f"e{n}", "s1")
    leased = await lease(queue)
    for delivery in leased[1:]:
        await queue.ack(delivery, attempt())

    # e0 is still pending: it stays although it is past the count.
    assert await queue.enforce_retention(max_age_s=3600.0, max_events=1) == 2

    assert [s.id for s in await queue.list_events("acme")] == ["e3", "e0"]
    assert await queue.enforce_retention(max_age_s=3600.0, max_events=0) == 1


async def test_retention_keeps_dead_letters_until_redriven_or_purged(
    queue: Queue, clock: FakeClock
) -> None:
    # Found by QA: retention deleted dead letters with their events, so redrive found none.
    await dead(queue, "lost", "s1")
    await dead(queue, "purged", "s1")
    await put(queue, "half", "s1", "s2")
    ok, failed = await lease(queue)
    await queue.ack(ok, attempt())
    await queue.dead_letter(failed, "gave up", attempt("failed", 400))
    for n in range(3):  # ordinary traffic in another space
        await put(queue, f"ok{n}", "s1", space="globex")
    for delivery in await lease(queue):
        await queue.ack(delivery, attempt())
    clock.advance(3600.0)

    assert await queue.enforce_retention(max_age_s=0.0, max_events=0) == 3

    letters = await queue.list_dead_letters("acme")
    assert sorted(d.event_id for d in letters) == ["half", "lost", "purged"]
    assert await queue.get_event("acme", "lost") is not None
    assert await queue.list_events("globex") == []
    purged = next(d for d in letters if d.event_id == "purged")
    assert await queue.purge("acme", ids=[purged.dead_letter_id]) == 1
    assert await queue.get_event("acme", "purged") is None
    assert await queue.redrive("acme") == 2
    for delivery in await lease(queue):
        await queue.ack(delivery, attempt())

    # Delivered after the redrive, they are history like any other.
    assert await queue.enforce_retention(max_age_s=0.0, max_events=0) == 2
    assert await queue.list_events("acme") == []
    assert await queue.list_dead_letters("acme") == []


async def test_events_retention_keeps_do_not_count_towards_max_events(queue: Queue) -> None:
    for n in range(3):
        await put(queue, f"e{n}", "s1")
    for delivery in await lease(queue):
        await queue.ack(delivery, attempt())
    await dead(queue, "dead", "s1")
    await put(queue, "pending", "s1")

    # The two newest are kept anyway, so the count keeps two delivered ones besides.
    assert await queue.enforce_retention(max_age_s=3600.0, max_events=2) == 1

    assert [s.id for s in await queue.list_events("acme")] == ["pending", "dead", "e2", "e1"]


async def test_stats_report_backlog_and_bytes(queue: Queue) -> None:
    await put(queue, "e1", "s1", "s2")

    stats = queue.stats()

    assert (stats["backlog"], stats["bytes"]) == (2, len(encode_event(event("e1"))))
