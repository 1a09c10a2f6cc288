"""JetStream replay against the real server: what a failed publish leaves behind, and
selections over a delivery log longer than ``scan_limit``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from eventgateway.errors import StoreError, ValidationError
from eventgateway.queue import jetstream_replay
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.replay import ReplayTarget
from tests.queue.kit import SPACE, FakeClock, MakeJS, attempt, lease, put


def existing(subscription_id: str) -> ReplayTarget | None:
    return ReplayTarget(f"fn-{subscription_id}") if subscription_id == "s1" else None


async def settled_events(make: MakeJS, count: int, **kw: Any) -> JetStreamQueue:
    kw.setdefault("clock", FakeClock())
    queue = await make(**kw)
    await settle(queue, [f"rp-e{i}" for i in range(count)])
    return queue


async def settle(queue: JetStreamQueue, event_ids: list[str]) -> None:
    for event_id in event_ids:
        await put(queue, event_id, "s1")
    leased: list[Any] = []
    while len(leased) < len(event_ids):
        leased += await lease(queue)
    for delivery in leased:
        await queue.ack(delivery, attempt())


def slow_acks(queue: JetStreamQueue, monkeypatch: pytest.MonkeyPatch, calls: int) -> None:
    """The first ``calls`` publishes get their acks after the deadline (a slow server)."""
    publisher = queue._publishing()
    real = publisher.publish
    made = 0

    async def publish(messages: Any, timeout_s: float) -> list[Any]:
        nonlocal made
        made += 1
        return await real(messages, 1e-6 if made <= calls else timeout_s)

    monkeypatch.setattr(publisher, "publish", publish)


async def nothing_leased(queue: JetStreamQueue) -> bool:
    await asyncio.sleep(0.3)  # the acks arrive late; nothing may be stored by then
    await queue._refresh(force=True)
    try:  # a lease waits for work: one that finds none never returns
        leased = await asyncio.wait_for(queue.lease(10), 1.5)
    except TimeoutError:
        leased = []
    return queue.stats()["backlog"] == 0 and leased == []


async def test_a_replay_whose_publish_timed_out_takes_its_stored_messages_back(
    make: MakeJS, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await settled_events(make, 3)
    slow_acks(queue, monkeypatch, calls=1)

    with pytest.raises(StoreError) as raised:
        await queue.replay(SPACE, ids=["rp-e0", "rp-e1", "rp-e2"], subscriptions=existing)

    assert "may still be made" not in str(raised.value)
    assert await nothing_leased(queue)


async def test_a_replay_that_cannot_take_its_messages_back_says_they_may_be_made(
    make: MakeJS, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await settled_events(make, 2)
    slow_acks(queue, monkeypatch, calls=2)

    with pytest.raises(StoreError, match=r"2 of its new deliveries .* may still be made"):
        await queue.replay(SPACE, ids=["rp-e0", "rp-e1"], subscriptions=existing)


async def test_a_recent_window_is_read_from_its_start_past_the_scan_limit(
    make: MakeJS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway and the server share this machine's clock.
    monkeypatch.setattr(jetstream_replay, "_CLOCK_SKEW_S", 0.0, raising=False)
    queue = await settled_events(make, 15, clock=time.time, scan_limit=10)
    await asyncio.sleep(1.1)  # the log records' timestamps lie before the window
    since = time.time()
    await settle(queue, ["rp-new0", "rp-new1", "rp-new2"])

    result = await queue.replay(SPACE, since=since, subscriptions=existing)

    assert (result.events, result.replayed) == (3, 3)


async def test_a_window_past_the_scan_limit_is_refused_not_answered_empty(
    make: MakeJS,
) -> None:
    queue = await settled_events(make, 15, scan_limit=10)

    with pytest.raises(ValidationError, match=r'scan limit.*later "since"'):
        await queue.replay(SPACE, since=0.0, subscriptions=existing)


async def test_many_ids_past_the_scan_limit_are_refused_not_found_missing(
    make: MakeJS,
) -> None:
    queue = await settled_events(make, 40, scan_limit=50)  # 80 log records
    every = [f"rp-e{i}" for i in range(40)]

    with pytest.raises(ValidationError, match=r"scan limit.*at most 32 ids"):
        await queue.replay(SPACE, ids=every, subscriptions=existing)
    result = await queue.replay(SPACE, ids=every[-32:], subscriptions=existing)
    assert result.replayed == 32
