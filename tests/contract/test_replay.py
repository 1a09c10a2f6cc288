"""One replay contract (``DeliveryLog.replay``, rules in ``queue/replay.py``), run against
every backend in ``BACKENDS``: memory, SQLite, and JetStream on the real server (each
queue on a prefix of its own, whose streams are deleted afterwards)."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from eventgateway.errors import NotFoundError, TooManyRequestsError, ValidationError
from eventgateway.queue.base import Accepted, Delivery
from eventgateway.queue.replay import ReplayResult, ReplaySkipped, ReplayTarget
from eventgateway.routing.filters import compile_filter
from tests.queue.kit import (
    DEADLINE_S,
    T0,
    FakeClock,
    MakeQueue,
    Queue,
    attempt,
    event,
    ids,
    put,
    queues,
    to,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "jetstream"])
async def make_queue(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, clock: FakeClock
) -> AsyncIterator[MakeQueue]:
    async with queues(request.param, tmp_path, clock) as make:
        yield make


@pytest.fixture
async def queue(make_queue: MakeQueue) -> Queue:
    return await make_queue()


def existing(
    *ids: str,
    ordered: bool = False,
    at_most_once: Sequence[str] = (),
    filters: Mapping[str, dict[str, Any]] | None = None,
):
    """The space's subscriptions now: ``ids`` exist (function ``fn-<id>``), others not;
    ``filters`` by subscription id, compiled as routing compiles them."""
    compiled = {name: compile_filter(pattern) for name, pattern in (filters or {}).items()}

    def target(subscription_id: str) -> ReplayTarget | None:
        if subscription_id not in ids:
            return None
        matcher = compiled.get(subscription_id)
        return ReplayTarget(
            f"fn-{subscription_id}",
            ordered=ordered,
            at_most_once=subscription_id in at_most_once,
            matches=None if matcher is None else matcher.matches_event,
        )

    return target


ALL = existing("s1", "s2", "s3")


async def lease(queue: Queue, max_count: int = 100) -> list[Delivery]:
    return await asyncio.wait_for(queue.lease(max_count), DEADLINE_S)


async def delivered(queue: Queue, event_id: str, *subscriptions: str, **kw) -> list[Delivery]:
    """Accept an event and deliver it to each subscription once."""
    await put(queue, event_id, *subscriptions, **kw)
    leased = await lease(queue)
    for delivery in leased:
        await queue.ack(delivery, attempt())
    return leased


async def only_a_marker_is_due(queue: Queue) -> bool:
    """Whether a lease finds nothing due but a new marker delivery (a lease hands out
    every due delivery at once, so anything a replay made due would come with it)."""
    await put(queue, "marker", "s9")
    return [(d.event.id, d.subscription_id) for d in await lease(queue)] == [("marker", "s9")]


# -- what a replay makes --------------------------------------------------------------------


async def test_replay_makes_new_deliveries_beside_the_old_ones(queue: Queue) -> None:
    first = await delivered(queue, "e1", "s1", "s2")

    result = await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert result == ReplayResult(replayed=2, events=1)
    again = await lease(queue)
    assert [(d.event.id, d.subscription_id, d.attempt) for d in again] == [
        ("e1", "s1", 0),
        ("e1", "s2", 0),
    ]
    assert {d.id for d in again}.isdisjoint(d.id for d in first)
    assert again[0].event == first[0].event  # the same CloudEvent, id and all
    await queue.ack(again[0], attempt())
    view = await queue.get_event("acme", "e1")
    assert view is not None
    assert [(d.delivery_id, d.state, len(d.attempt_log), d.replay_of) for d in view.deliveries] == [
        (first[0].id, "delivered", 1, None),
        (first[1].id, "delivered", 1, None),
        (again[0].id, "delivered", 1, first[0].id),
        (again[1].id, "pending", 0, first[1].id),
    ]
    assert view.state == "pending"


async def test_replay_to_one_subscription(queue: Queue) -> None:
    await delivered(queue, "e1", "s1", "s2")

    result = await queue.replay("acme", ids=["e1"], subscription_id="s2", subscriptions=ALL)

    assert (result.replayed, result.events) == (1, 1)
    assert [d.subscription_id for d in await lease(queue)] == ["s2"]


async def test_a_replay_of_a_replay_repeats_the_original_once_per_subscription(
    queue: Queue,
) -> None:
    (original,) = await delivered(queue, "e1", "s1")
    await queue.replay("acme", ids=["e1"], subscriptions=ALL)
    await queue.ack((await lease(queue))[0], attempt())

    result = await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert result.replayed == 1
    view = await queue.get_event("acme", "e1")
    assert view is not None
    assert [d.replay_of for d in view.deliveries] == [None, original.id, original.id]


async def test_replay_skips_deleted_and_at_most_once_subscriptions(queue: Queue) -> None:
    await delivered(queue, "e1", "s1", "s2", "s3")

    result = await queue.replay(
        "acme", ids=["e1"], subscriptions=existing("s1", "s3", at_most_once=["s3"])
    )

    assert result == ReplayResult(
        replayed=1, events=1, skipped=ReplaySkipped(deleted_subscription=1, at_most_once=1)
    )
    assert [d.subscription_id for d in await lease(queue)] == ["s1"]


async def test_replay_skips_subscriptions_whose_filter_now_turns_the_event_away(
    queue: Queue,
) -> None:
    await delivered(queue, "e1", "s1", "s2", "s3")
    await delivered(queue, "e2", "s1", "s2", "s3")
    # Matched against the stored event (kit.event: source "test", data {"n": <id>}).
    now = existing(
        "s1",
        "s2",
        "s3",
        filters={
            "s2": {"data": {"n": ["e2"]}},
            "s3": {"source": ["test"], "plan": [{"exists": False}]},
        },
    )

    result = await queue.replay("acme", ids=["e1", "e2"], subscriptions=now)

    assert result == ReplayResult(replayed=5, events=2, skipped=ReplaySkipped(filtered=1))
    assert sorted(ids(await lease(queue))) == [
        ("e1", "s1"),
        ("e1", "s3"),
        ("e2", "s1"),
        ("e2", "s2"),
        ("e2", "s3"),
    ]


async def test_replay_leaves_dead_letters_alone(queue: Queue) -> None:
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    await queue.dead_letter(delivery, "gave up", attempt("failed", 410))

    assert (await queue.replay("acme", ids=["e1"], subscriptions=ALL)).replayed == 1

    (again,) = await lease(queue)
    assert again.id != delivery.id
    (letter,) = await queue.list_dead_letters("acme")
    assert letter.dead_letter_id == delivery.id


async def test_replay_is_not_deduplicated_and_does_not_touch_deduplication(
    queue: Queue,
) -> None:
    await delivered(queue, "e1", "s1")

    await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert [d.event.id for d in await lease(queue)] == ["e1"]
    assert await put(queue, "e1", "s1") is True  # still a duplicate within the window


async def test_replay_keeps_the_authorizer_request(queue: Queue) -> None:
    request = {"headers": {"authorization": ["Bearer x"]}, "path": "/acme"}
    await delivered(queue, "e1", "s1", auth_request=request)

    await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert [d.auth_request for d in await lease(queue)] == [request]


async def test_a_replayed_delivery_ages_from_the_replay(queue: Queue, clock: FakeClock) -> None:
    await delivered(queue, "e1", "s1")
    clock.advance(2 * 86400.0)  # past a default retry policy's max age since acceptance

    await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert [d.accepted_at for d in await lease(queue)] == [T0 + 2 * 86400.0]


async def test_a_replay_wakes_a_waiting_lease(queue: Queue) -> None:
    await delivered(queue, "e1", "s1")
    waiting = asyncio.create_task(queue.lease(10))
    # Not a wait for a result: time for the lease to look, find nothing and start waiting
    # (a JetStream lease first asks the server), so that the replay must wake it.
    await asyncio.sleep(0.05)
    assert not waiting.done()

    await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert [d.event.id for d in await asyncio.wait_for(waiting, DEADLINE_S)] == ["e1"]


async def test_a_replayed_ordered_delivery_goes_behind_its_key(queue: Queue) -> None:
    ordered = existing("s1", ordered=True)

    async def keyed(event_id: str) -> None:
        item = Accepted(event(event_id, extensions={"partitionkey": "k"}), to("s1", key="k"))
        await queue.accept([item])

    await keyed("a1")
    await queue.ack((await lease(queue))[0], attempt())
    await keyed("a2")
    (a2,) = await lease(queue)

    await queue.replay("acme", ids=["a1"], subscriptions=ordered)

    assert await only_a_marker_is_due(queue)  # a2 holds its key until settled
    await queue.ack(a2, attempt())
    (again,) = await lease(queue)
    assert (again.event.id, again.partition_key) == ("a1", "k")


# -- selection ------------------------------------------------------------------------------


async def test_a_window_selects_by_received_time(queue: Queue, clock: FakeClock) -> None:
    for event_id in ("e1", "e2", "e3"):
        await delivered(queue, event_id, "s1")
        clock.advance(10.0)

    middle = await queue.replay("acme", since=T0 + 5, until=T0 + 15, subscriptions=ALL)
    [e2] = await lease(queue)
    await queue.ack(e2, attempt())
    onwards = await queue.replay("acme", since=T0 + 10, subscriptions=ALL)

    assert (middle.events, e2.event.id) == (1, "e2")
    assert onwards.events == 2
    assert [d.event.id for d in await lease(queue)] == ["e2", "e3"]


async def test_a_window_with_a_subscription_selects_only_its_events(queue: Queue) -> None:
    await delivered(queue, "e1", "s1")
    await delivered(queue, "e2", "s2")
    await delivered(queue, "e3", "s1", space="globex")

    result = await queue.replay("acme", since=T0, subscription_id="s2", subscriptions=ALL)

    assert (result.events, result.replayed) == (1, 1)
    assert [(d.event.id, d.space) for d in await lease(queue)] == [("e2", "acme")]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({}, 'A window needs "since"'),
        ({"until": T0 + 60}, 'A window needs "since"'),
        ({"ids": ["e1"], "since": T0}, "not both"),
        ({"ids": []}, "at least one event"),
    ],
)
async def test_a_selection_that_is_not_safe_is_refused(
    queue: Queue, selection: dict, message: str
) -> None:
    await delivered(queue, "e1", "s1")

    with pytest.raises(ValidationError, match=message):
        await queue.replay("acme", subscriptions=ALL, **selection)

    assert await only_a_marker_is_due(queue)


async def test_more_events_than_the_cap_are_refused_naming_it(queue: Queue) -> None:
    for event_id in ("e1", "e2", "e3"):
        await delivered(queue, event_id, "s1")

    with pytest.raises(ValidationError, match="more than 2 events"):
        await queue.replay("acme", since=T0, subscriptions=ALL, max_events=2)
    with pytest.raises(ValidationError, match="more than 2 events"):
        await queue.replay("acme", ids=["e1", "e2", "e3"], subscriptions=ALL, max_events=2)

    assert await only_a_marker_is_due(queue)


async def test_unknown_ids_are_not_found_and_nothing_is_replayed(queue: Queue) -> None:
    await delivered(queue, "e1", "s1")
    await delivered(queue, "e2", "s1", space="globex")

    with pytest.raises(NotFoundError, match="'nope', 'e2'") as refused:
        await queue.replay("acme", ids=["e1", "nope", "e2"], subscriptions=ALL)

    assert "nothing was replayed" in str(refused.value)
    assert await only_a_marker_is_due(queue)


async def test_an_id_without_a_delivery_to_the_subscription_is_not_found(queue: Queue) -> None:
    await delivered(queue, "e1", "s1")

    with pytest.raises(NotFoundError, match='subscription "s2"'):
        await queue.replay("acme", ids=["e1"], subscription_id="s2", subscriptions=ALL)


async def test_events_removed_by_retention_cannot_be_replayed(
    queue: Queue, clock: FakeClock
) -> None:
    await delivered(queue, "e1", "s1")
    clock.advance(3600.0)
    assert await queue.enforce_retention(max_age_s=60.0, max_events=1000) == 1

    with pytest.raises(NotFoundError, match="'e1'"):
        await queue.replay("acme", ids=["e1"], subscriptions=ALL)
    assert (await queue.replay("acme", since=T0, subscriptions=ALL)).events == 0


# -- bounds ---------------------------------------------------------------------------------


async def test_a_replay_past_the_queue_bound_is_refused_whole(make_queue: MakeQueue) -> None:
    queue = await make_queue(max_deliveries=3)
    await delivered(queue, "e1", "s1", "s2")
    await put(queue, "e2", "s1")
    await put(queue, "e3", "s1")

    with pytest.raises(TooManyRequestsError, match="add 2 deliveries") as refused:
        await queue.replay("acme", ids=["e1"], subscriptions=ALL)

    assert "holding 2 of at most 3 deliveries" in str(refused.value)
    assert queue.backlog() == 2
    view = await queue.get_event("acme", "e1")
    assert view is not None
    assert len(view.deliveries) == 2
    assert (await queue.replay("acme", ids=["e1"], subscription_id="s1", subscriptions=ALL)) == (
        ReplayResult(replayed=1, events=1)
    )
    assert queue.backlog() == 3
