"""The JetStream delivery log when its records race the queue or are lost: a redrive's
record written after the redriven delivery was settled, and settles whose record a crash
lost, which retention writes from the queue's state (``queue/jetstream_reconcile.py``).

Needs a NATS server with JetStream at ``NATS_URL`` (skipped without one, failed in CI).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from eventgateway.queue import jetstream_log
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.jetstream_dead import dead_letter
from eventgateway.queue.jetstream_history import LOST_ATTEMPT
from eventgateway.queue.jetstream_reconcile import QUIET_S, lost_settles
from tests.queue.kit import DEADLINE_S, FakeClock, MakeJS, attempt, lease, put

FOREVER: dict[str, Any] = {"max_age_s": 1e9, "max_events": 1_000_000}
# The publish timeout of queues whose retention finds lost settles: it waits that long
# for records on their way before it logs one.
SETTLE_S = 0.5


def lose_the_next_record(queue: JetStreamQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next log record is never written, as when the instance dies before it."""

    async def lost(subject: str, record: object) -> None:
        monkeypatch.undo()
        raise TimeoutError("killed")

    monkeypatch.setattr(queue, "_append", lost)


async def state_of(queue: JetStreamQueue, event_id: str = "e1") -> tuple[str, int, str, int]:
    view = await queue.get_event("acme", event_id)
    assert view is not None
    (d,) = view.deliveries
    return d.state, d.attempts, d.dead_reason or d.last_error, len(d.attempt_log)


async def test_a_redrive_logged_after_its_delivery_was_settled_leaves_it_delivered(
    make: MakeJS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make(clock=clock), await make(clock=clock)
    await put(a, "e1", "s1")
    (first,) = await lease(a)
    await a.dead_letter(first, "gave up", attempt("failed", 500))
    note = a._note
    settled = asyncio.Event()

    async def note_after_the_settle(*args: Any) -> set[str]:
        await asyncio.wait_for(settled.wait(), DEADLINE_S)
        return await note(*args)

    monkeypatch.setattr(a, "_note", note_after_the_settle)
    redriving = asyncio.create_task(a.redrive("acme"))
    (again,) = await lease(b)
    await b.ack(again, attempt())
    settled.set()
    assert await redriving == 1

    assert await state_of(b) == ("delivered", 1, "", 2)
    assert await b.list_events("acme", state="pending") == []


async def test_retention_logs_a_delivered_settle_whose_record_was_lost(
    make: MakeJS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await make(clock=clock, publish_timeout_s=SETTLE_S)
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    lose_the_next_record(queue, monkeypatch)
    await queue.ack(delivery, attempt())
    assert await state_of(queue) == ("pending", 0, "", 0)

    await queue.enforce_retention(**FOREVER)  # too soon: the record may be on its way
    assert await state_of(queue) == ("pending", 0, "", 0)
    clock.advance(QUIET_S)
    await queue.enforce_retention(**FOREVER)

    assert await state_of(queue) == ("delivered", 0, LOST_ATTEMPT, 0)
    clock.advance(10.0)
    assert await queue.enforce_retention(max_age_s=5.0, max_events=100) == 1


async def test_retention_logs_a_dead_letter_whose_record_was_lost(
    make: MakeJS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await make(clock=clock, publish_timeout_s=SETTLE_S)
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    lose_the_next_record(queue, monkeypatch)
    await queue.dead_letter(delivery, "gave up", attempt("failed", 410))

    clock.advance(QUIET_S)
    await queue.enforce_retention(**FOREVER)

    # The lost attempt is counted (the dead letter says how many), but has no log entry.
    assert await state_of(queue) == ("dead", 1, "gave up", 0)
    (letter,) = await queue.list_dead_letters("acme")
    assert letter.attempts == 1
    assert await queue.redrive("acme", ids=[letter.dead_letter_id]) == 1
    (again,) = await lease(queue)
    await queue.ack(again, attempt())
    assert await state_of(queue) == ("delivered", 1, "", 1)


async def test_a_purge_leaves_alone_a_dead_letter_a_redrive_has_republished(
    make: MakeJS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: a purge took letters a concurrent redrive had already republished: the events
    # were delivered again with their history erased (191-263 of 300 then answered 404).
    queue = await make()
    await put(queue, "e1", "s1")
    (first,) = await lease(queue)
    await queue.dead_letter(first, "gave up", attempt("failed", 500))
    remove = jetstream_log.remove_dead_letter
    published, purged = asyncio.Event(), asyncio.Event()

    async def redrive_waits_for_the_purge(*args: Any) -> bool:
        if not published.is_set():  # the redrive's call: it has republished the letter
            published.set()
            await asyncio.wait_for(purged.wait(), DEADLINE_S)
        return await remove(*args)

    monkeypatch.setattr(jetstream_log, "remove_dead_letter", redrive_waits_for_the_purge)
    redriving = asyncio.create_task(queue.redrive("acme"))
    await asyncio.wait_for(published.wait(), DEADLINE_S)
    assert await queue.purge("acme") == 0  # the redrive owns the letter
    purged.set()
    assert await redriving == 1

    (again,) = await lease(queue)
    await queue.ack(again, attempt())
    assert await state_of(queue) == ("delivered", 1, "", 2)
    assert await queue.list_dead_letters("acme") == []


async def test_retention_reconciles_nothing_from_a_log_read_cut_at_scan_limit(
    make: MakeJS, clock: FakeClock
) -> None:
    # QA: past scan_limit records the fold lacks the newest settles; every pass took their
    # deliveries for lost settles and logged them again (36,000 a minute), shown pending.
    queue = await make(clock=clock, scan_limit=3)
    for event_id in ("e1", "e2", "e3"):
        await put(queue, event_id, "s1")
    for delivery in await lease(queue):
        await queue.ack(delivery, attempt())  # 3 Accepted records, then 3 Settled ones
    names = queue.names
    before = (await queue._jetstream().stream_info(names.log_stream)).state.messages

    clock.advance(QUIET_S)
    await queue.enforce_retention(**FOREVER)

    after = (await queue._jetstream().stream_info(names.log_stream)).state.messages
    assert after == before == 6
    assert await state_of(queue, "e3") == ("delivered", 1, "", 1)


async def test_a_settle_logged_after_retention_read_the_log_is_not_taken_for_lost(
    make: MakeJS, clock: FakeClock
) -> None:
    # QA: reading a large log takes seconds while a backlog is delivered; deliveries
    # settled (and logged) after the read were logged again as lost (LOST_ATTEMPT shown).
    queue = await make(clock=clock)
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    clock.advance(QUIET_S)
    events = await queue._history(f"{queue.names.prefix}.log.>")  # read before the ack
    await queue.ack(delivery, attempt())
    js, names = queue._jetstream(), queue.names

    found, _ = await lost_settles(js, names, events, now=clock(), after=0, settle_s=0.0)

    assert found == []
    assert await state_of(queue) == ("delivered", 1, "", 1)


async def test_a_settle_whose_record_is_on_its_way_at_the_lookup_is_not_taken_for_lost(
    make: MakeJS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await make(clock=clock)
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    clock.advance(QUIET_S)
    events = await queue._history(f"{queue.names.prefix}.log.>")
    append, acked = queue._append, asyncio.Event()

    async def slow_append(subject: str, record: object) -> None:
        acked.set()  # the message is gone, its record not yet logged
        await asyncio.sleep(0.2)
        await append(subject, record)  # type: ignore[arg-type]

    monkeypatch.setattr(queue, "_append", slow_append)
    settling = asyncio.create_task(queue.ack(delivery, attempt()))
    await asyncio.wait_for(acked.wait(), DEADLINE_S)
    js, names = queue._jetstream(), queue.names

    found, _ = await lost_settles(js, names, events, now=clock(), after=0, settle_s=1.0)

    await settling
    assert found == []


async def test_retention_leaves_deliveries_the_queue_still_holds_pending(
    make: MakeJS, clock: FakeClock
) -> None:
    queue = await make(clock=clock)
    await put(queue, "e1", "s1")
    await put(queue, "e2", "s1")
    (leased, _) = await lease(queue, 2)
    await queue.retry_later(leased, 3600.0, attempt("failed", 503))

    clock.advance(QUIET_S)
    await queue.enforce_retention(**FOREVER)

    assert await state_of(queue, "e1") == ("retrying", 1, "", 1)
    assert await state_of(queue, "e2") == ("pending", 0, "", 0)


async def test_lookups_per_pass_are_bounded_and_go_on_where_the_last_pass_stopped(
    make: MakeJS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await make(clock=clock)
    for n in range(3):
        await put(queue, f"e{n}", "s1")
    # e0 stays in the stream, so the stream's first sequence prunes nothing.
    for delivery in (await lease(queue, 3))[1:]:
        lose_the_next_record(queue, monkeypatch)
        await queue.ack(delivery, attempt())
    clock.advance(QUIET_S)
    events = await queue._history(f"{queue.names.prefix}.log.>")
    js, names, now = queue._jetstream(), queue.names, clock()

    found, after = await lost_settles(js, names, events, now=now, after=0, budget=2, settle_s=0)
    assert [record.state for _, record in found] == ["delivered"]  # looked at e0 and e1
    found, after = await lost_settles(js, names, events, now=now, after=after, budget=2, settle_s=0)
    assert [record.delivery_id for _, record in found] == [next(iter(events[2].deliveries))]


async def test_a_dead_letter_written_by_an_earlier_build_is_still_found_by_id(
    make: MakeJS, clock: FakeClock
) -> None:
    # Earlier builds' subject had no event token: <prefix>.deadletters.<h(space)>.<id>.
    queue = await make(clock=clock)
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    await queue.dead_letter(delivery, "gave up", attempt("failed", 410))
    js, names = queue._jetstream(), queue.names
    found = await dead_letter(js, names, "acme", delivery.id)
    assert found is not None
    seq, dead = found
    await js.publish(
        names.legacy_deadletter_subject("acme", delivery.id), msgspec.msgpack.encode(dead)
    )
    await js.delete_msg(names.deadletters_stream, seq)

    letter = await queue.get_dead_letter("acme", delivery.id)
    assert letter is not None
    assert letter.event_id == "e1"
    assert [d.dead_letter_id for d in await queue.list_dead_letters("acme")] == [delivery.id]
    assert await queue.redrive("acme", ids=[delivery.id]) == 1
    assert await dead_letter(js, names, "acme", delivery.id) is None


async def test_an_attempt_a_crash_cut_off_is_counted_as_the_retry_policy_counted_it(
    make: MakeJS,
) -> None:
    # The holder of the first lease dies mid-attempt (nothing settled, nothing logged);
    # the server counts that delivery, so the next attempt is the second, and a policy of
    # two attempts gives up after it. The event's view must count two attempts, as the
    # dead letter and its "max attempts 2 reached" do, with one of them in the log.
    a, b = await make(lease_s=1.0), await make(lease_s=1.0, fetch_wait_s=5.0)
    await put(a, "e1", "s1")
    await lease(a)
    (again,) = await lease(b)  # after ack_wait
    assert again.attempt == 1
    await b.dead_letter(again, "max attempts 2 reached: HTTP 500", attempt("failed", 500))

    assert await state_of(b) == ("dead", 2, "max attempts 2 reached: HTTP 500", 1)
    view = await b.get_event("acme", "e1")
    assert view is not None
    assert [a.attempt for a in view.deliveries[0].attempt_log] == [2]  # the first: no record
    (letter,) = await b.list_dead_letters("acme")
    assert letter.attempts == 2
