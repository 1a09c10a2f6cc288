"""A blocked subscription's overflow deferred out of the shared consumer on JetStream
(``queue/jetstream_defer.py``, ``queue/jetstream_mover.py``): copied to
``<prefix>.deferred``, acked, and moved back when due, keeping its delivery id, its
attempt number and its history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec
import nats.errors
from nats.aio.msg import Msg

from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.jetstream_wire import Envelope
from tests.queue.kit import DEADLINE_S, SPACE, MakeJS, accepted, attempt, event

BUSY = 600


async def until(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float) -> None:
    """Wait until ``check()`` holds, looking every 20 ms; fail past ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while not await check():
        assert time.monotonic() < end, f"not within {deadline_s} s: {what}"
        await asyncio.sleep(0.02)


def tiny_cooldowns(queue: JetStreamQueue, *, first_s: float, most_s: float) -> None:
    queue._defer_cooldown_s = first_s
    queue._defer_max_cooldown_s = most_s


async def ack_pending(queue: JetStreamQueue) -> int:
    """The shared (unordered) consumer's leased messages, over all instances."""
    assert queue._js is not None
    info = await queue._js.consumer_info(queue.names.deliveries_stream, queue.names.consumer)
    return info.num_ack_pending or 0


async def ever_deferred(queue: JetStreamQueue) -> bool:
    """Whether anything was published to ``<prefix>.deferred`` (it is then pending on,
    or was delivered by, the mover's consumer)."""
    assert queue._js is not None
    names = queue.names
    info = await queue._js.consumer_info(names.deliveries_stream, names.deferred_consumer)
    return (info.num_pending or 0) + (info.delivered.consumer_seq or 0) > 0


async def stream_empty(queue: JetStreamQueue) -> bool:
    assert queue._js is not None
    info = await queue._js.stream_info(queue.names.deliveries_stream)
    return info.state.messages == 0


async def lease_until(
    queue: JetStreamQueue, wanted: set[str], *, room: int = 64, deadline_s: float = 20.0
) -> list[Delivery]:
    """Lease (everything has room) until every event id in ``wanted`` was leased; every
    delivery leased, in order, duplicates included."""
    got: list[Delivery] = []
    end = time.monotonic() + deadline_s
    while not wanted <= {d.event.id for d in got}:
        left = end - time.monotonic()
        assert left > 0, f"never leased: {sorted(wanted - {d.event.id for d in got})[:5]}"
        try:
            got += await asyncio.wait_for(queue.lease(room, room=lambda _: room), left)
        except TimeoutError:
            continue
    return got


async def test_a_blocked_subscriptions_overflow_leaves_the_shared_consumer(make: MakeJS):
    queue = await make(lease_s=30.0)
    queue._max_parked = 100
    queue._aside_per_subscription = 50
    tiny_cooldowns(queue, first_s=0.05, most_s=0.5)
    await queue.accept([accepted(f"b{n}", "busy") for n in range(BUSY)])

    # Another subscription's deliveries flow while "busy" has no slot; meanwhile its
    # backlog beyond what this instance keeps is deferred, and leaves the consumer.
    peak, n = 0, 0
    end = time.monotonic() + 20.0
    while n < 20 or not await ever_deferred(queue) or await ack_pending(queue) > 150:
        assert time.monotonic() < end, "the busy backlog was never deferred"
        n += 1
        await queue.accept([accepted(f"o{n}", "other")])
        others = await asyncio.wait_for(queue.lease(10, exclude={"busy"}), DEADLINE_S)
        assert [d.event.id for d in others] == [f"o{n}"]
        for delivery in others:
            await queue.ack(delivery, attempt())
        peak = max(peak, await ack_pending(queue))
    # Whole parked (which counts deferrals under way) + set aside + one lease.
    bound = queue._max_parked + queue._aside_per_subscription + 10
    print(f"\npeak num_ack_pending while busy is blocked: {peak} (bound {bound}, backlog {BUSY})")
    assert peak <= bound

    busy = await lease_until(queue, {f"b{n}" for n in range(BUSY)})
    for delivery in busy:
        await queue.ack(delivery, attempt())

    assert len(busy) == BUSY  # none twice
    assert len({d.id for d in busy}) == BUSY
    assert {d.attempt for d in busy} == {0}  # deferred, never counted as attempted
    await until(lambda: stream_empty(queue), "every delivery settled, no copy left", DEADLINE_S)


async def _deferred_after_one_failure(queue: JetStreamQueue) -> tuple[str, Delivery]:
    """``a`` and ``x`` of one subscription fail once each; while the subscription has no
    slot, ``x`` is deferred (``a``, the older, is kept parked whole). Returns ``x``'s
    delivery id from its first lease, and ``x`` leased again once the subscription has
    room (after the mover put it back)."""
    queue._max_parked = 2  # so a blocked subscription keeps one whole (half of it)
    queue._aside_per_subscription = 0  # and defers the rest
    await queue.accept([accepted("a", "s"), accepted("x", "s")])
    first = await lease_until(queue, {"a", "x"})
    for delivery in first:
        await queue.retry_later(delivery, 0.2, attempt("failed", 500, "HTTP 500"))

    blocked = asyncio.create_task(queue.lease(10, exclude={"s"}))
    try:
        await until(lambda: ever_deferred(queue), "x deferred", DEADLINE_S)
    finally:
        blocked.cancel()
        await asyncio.gather(blocked, return_exceptions=True)
    again = await lease_until(queue, {"a", "x"})
    by_id = {d.event.id: d for d in again}
    assert len(again) == 2
    assert by_id["a"].attempt == 1  # kept parked whole, never deferred
    return next(d.id for d in first if d.event.id == "x"), by_id["x"]


async def test_a_deferred_delivery_keeps_its_attempt_number_and_history(make: MakeJS):
    queue = await make(lease_s=30.0)
    tiny_cooldowns(queue, first_s=0.1, most_s=0.2)

    x_id, x = await _deferred_after_one_failure(queue)

    assert (x.id, x.attempt) == (x_id, 1)  # its id and attempt number kept
    view = await queue.get_event(SPACE, "x")
    assert view is not None
    [shown] = view.deliveries
    assert (shown.delivery_id, shown.state, shown.attempts) == (x_id, "retrying", 1)
    await queue.ack(x, attempt())
    view = await queue.get_event(SPACE, "x")
    assert view is not None
    [shown] = view.deliveries
    assert (shown.state, shown.attempts, len(shown.attempt_log)) == ("delivered", 2, 2)


async def test_a_deferred_delivery_is_not_handed_out_before_it_is_due(make: MakeJS):
    queue = await make(lease_s=30.0)
    queue._max_parked = 2  # a blocked subscription keeps one whole: "k"
    queue._aside_per_subscription = 0
    cooldown = 1.0
    tiny_cooldowns(queue, first_s=cooldown, most_s=cooldown)
    await queue.accept([accepted("k", "s"), accepted("d", "s"), accepted("o", "other")])
    start = time.time()  # before the deferral: its due time is later than this + cooldown

    others = await asyncio.wait_for(queue.lease(10, exclude={"s"}), DEADLINE_S)
    assert [e.event.id for e in others] == ["o"]
    await until(lambda: ever_deferred(queue), "d deferred", DEADLINE_S)
    [kept] = await asyncio.wait_for(queue.lease(10), DEADLINE_S)  # room for "s" now
    assert kept.event.id == "k"
    [came] = await asyncio.wait_for(queue.lease(10), cooldown + DEADLINE_S)
    came_at = time.time()

    assert came.event.id == "d"
    print(f"\ndeferred for {cooldown} s, leased after {came_at - start:.3f} s")
    assert came_at >= start + cooldown - 0.06  # the mover's slack: 50 ms
    assert came.attempt == 0


async def test_moving_a_deferred_message_twice_delivers_it_once(make: MakeJS):
    queue = await make(lease_s=30.0)
    assert queue._js is not None
    names, js = queue.names, queue._js
    copy_seq, msg = await _deferred_by_hand(queue, "e1")
    publisher = queue._publishing()
    real_confirm = publisher.confirm

    async def crash_before_the_ack(subject: str, payload: bytes, timeout_s: float) -> None:
        raise nats.errors.TimeoutError

    # The first move publishes and logs, then "dies" before its ack. The delivery is
    # made meanwhile; then the deferred message comes back (here at once, after
    # ack_wait in earnest) and the mover (running since the lease) moves it again.
    publisher.confirm = crash_before_the_ack  # type: ignore[method-assign]
    assert await queue._move([msg]) == 1
    publisher.confirm = real_confirm  # type: ignore[method-assign]
    [delivery] = await asyncio.wait_for(queue.lease(10), DEADLINE_S)
    await queue.ack(delivery, attempt())
    assert (delivery.event.id, delivery.id) == ("e1", "7")
    await msg.nak()

    # Moved again (the deferred message is acked: gone), storing nothing new.
    await until(lambda: stream_empty(queue), "the deferred message moved again", DEADLINE_S)
    assert (await js.stream_info(names.deliveries_stream)).state.last_seq == copy_seq + 1


async def _deferred_by_hand(queue: JetStreamQueue, event_id: str) -> tuple[int, Msg]:
    """A deferred copy of a delivery of ``event_id``, published as a deferral would and
    fetched from the mover's consumer (the mover itself is not running: no lease yet)."""
    from eventgateway.events.codec import encode_event

    assert queue._js is not None
    names, js = queue.names, queue._js
    envelope = Envelope(
        SPACE, "s", "fn-s", time.time(), encode_event(event(event_id)), delivery_id="7"
    )
    copy = msgspec.structs.replace(envelope, attempts_before=0, due_at=time.time(), deferred=1)
    ack = await js.publish(names.deferred_subject, msgspec.msgpack.encode(copy))
    sub = await js.pull_subscribe(
        names.deferred_subject, durable=names.deferred_consumer, stream=names.deliveries_stream
    )
    [msg] = await sub.fetch(1, timeout=DEADLINE_S)
    return ack.seq, msg


async def test_a_deferred_dead_letter_counts_earlier_attempts_and_a_redrive_restarts(
    make: MakeJS,
):
    queue = await make(lease_s=30.0)
    tiny_cooldowns(queue, first_s=0.1, most_s=0.2)
    x_id, x = await _deferred_after_one_failure(queue)
    assert (x.id, x.attempt) == (x_id, 1)

    await queue.dead_letter(x, "gave up", attempt("failed", 500, "HTTP 500"))

    dead = await queue.get_dead_letter(SPACE, x.id)
    assert dead is not None
    assert dead.attempts == 2  # the one before the deferral, and this one
    view = await queue.get_event(SPACE, "x")
    assert view is not None
    assert (view.deliveries[0].state, view.deliveries[0].attempts) == ("dead", 2)
    assert await queue.redrive(SPACE, ids=[x.id]) == 1
    [redriven] = await lease_until(queue, {"x"})
    assert (redriven.id, redriven.attempt) == (x.id, 0)
    view = await queue.get_event(SPACE, "x")
    assert view is not None
    assert (view.deliveries[0].state, view.deliveries[0].attempts) == ("pending", 0)
