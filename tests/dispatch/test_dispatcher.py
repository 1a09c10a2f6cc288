"""The lease loop's concurrency bounds, with a real MemoryQueue and a fake invoker."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Collection
from types import SimpleNamespace
from typing import Any

import pytest

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Outcome
from eventgateway.errors import StorageFullError
from eventgateway.events.codec import encode_event
from eventgateway.events.model import CloudEvent
from eventgateway.model.runtime_provider import RuntimeLimit
from eventgateway.providers.base import Reply
from eventgateway.queue.base import Accepted, Delivery, NewDelivery, Room
from eventgateway.queue.memory import MemoryQueue
from tests.dispatch.kit import run_until

DEADLINE_S = 5.0


class GatedInvoker:
    """Each call waits for its function's gate; records calls in the order they began."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Semaphore] = collections.defaultdict(
            lambda: asyncio.Semaphore(0)
        )
        self.started: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.started.append((kw["function_id"], event.id))
        self.changed.set()
        await self.gates[kw["function_id"]].acquire()
        return Outcome(ok=True, reply=Reply(status=200, body=b""))


class Table:
    def target(self, space: str, subscription_id: str) -> Any:
        return SimpleNamespace(
            authorizer_id=None,
            function=SimpleNamespace(function_id=subscription_id),
            subscription=SimpleNamespace(retry_policy=None),
        )

    def runtime_limits(self) -> dict[str, RuntimeLimit]:
        return {}


class RuntimeTable(Table):
    """Subscription ``local``'s function is a local-runtime one with concurrency 1."""

    def runtime_limits(self) -> dict[str, RuntimeLimit]:
        return {"local": RuntimeLimit(("s", "local"), 1)}


class CountingQueue(MemoryQueue):
    """Records the size of every lease that handed something out."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        batch = await super().lease(max_count, exclude=exclude, room=room)
        if batch:
            self.batches.append(len(batch))
        return batch


def _event(event_id: str) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="/test",
        type="user.created",
        specversion="1.0",
        data={"n": event_id},
    )


async def _put(queue: MemoryQueue, subscription_id: str, *event_ids: str) -> None:
    for event_id in event_ids:
        delivery = NewDelivery(
            space="s", subscription_id=subscription_id, function_id=subscription_id
        )
        await queue.accept([Accepted(_event(event_id), [delivery])])


async def _until(invoker: GatedInvoker, condition: Any) -> None:
    async def wait() -> None:
        while not condition():
            invoker.changed.clear()
            await invoker.changed.wait()

    await asyncio.wait_for(wait(), DEADLINE_S)


async def test_a_hung_subscription_holds_only_its_own_slots() -> None:
    queue = MemoryQueue()
    invoker = GatedInvoker()
    dispatcher = Dispatcher(queue, invoker, Table, per_subscription=2)  # type: ignore[arg-type]
    await _put(queue, "hung", "h1", "h2", "h3", "h4", "h5")
    await _put(queue, "fine", "f1")
    runner = asyncio.create_task(dispatcher.run())
    try:
        await _until(invoker, lambda: ("fine", "f1") in invoker.started)
        hung = [event_id for function_id, event_id in invoker.started if function_id == "hung"]
        assert hung == ["h1", "h2"]  # its two slots, and not one more
        assert queue.backlog() == 6
    finally:
        dispatcher.stop()
        for gate in ("hung", "fine"):
            for _ in range(5):
                invoker.gates[gate].release()
        await asyncio.wait_for(runner, DEADLINE_S)
    assert queue.backlog() == 3  # stopped: what was never leased stays queued


async def test_a_local_runtime_function_is_leased_no_more_than_it_can_start() -> None:
    # Deliveries leased beyond its concurrency would wait in the gateway for a worker; a
    # graceful stop then failed them unattempted (QA: dead letters for calls never made).
    queue = CountingQueue()
    invoker = GatedInvoker()
    dispatcher = Dispatcher(queue, invoker, RuntimeTable, per_subscription=8)  # type: ignore[arg-type]
    await _put(queue, "local", "l1", "l2", "l3")
    await _put(queue, "http", "h1", "h2", "h3")
    runner = asyncio.create_task(dispatcher.run())

    def started(function_id: str) -> list[str]:
        return [event_id for f, event_id in invoker.started if f == function_id]

    try:
        await _until(invoker, lambda: len(started("http")) == 3 and started("local"))
        assert started("local") == ["l1"]  # one at a time, while http gets all three
        invoker.gates["local"].release()
        await _until(invoker, lambda: len(started("local")) == 2)
        assert started("local") == ["l1", "l2"]
    finally:
        dispatcher.stop()
        for gate in ("local", "http"):
            for _ in range(3):
                invoker.gates[gate].release()
        await asyncio.wait_for(runner, DEADLINE_S)
    assert started("local") == ["l1", "l2"]
    assert queue.backlog() == 1  # l3 was never leased: a stop leaves it queued, unattempted


async def test_a_busy_subscription_is_leased_for_in_batches_not_one_per_freed_slot() -> None:
    queue = CountingQueue()
    invoker = GatedInvoker()
    dispatcher = Dispatcher(queue, invoker, Table, per_subscription=4)  # type: ignore[arg-type]
    await _put(queue, "busy", *(f"e{n}" for n in range(12)))
    runner = asyncio.create_task(dispatcher.run())
    try:
        await _until(invoker, lambda: len(invoker.started) == 4)
        invoker.gates["busy"].release()  # one slot frees: not worth a lease yet
        await _until(invoker, lambda: queue.backlog() == 11)
        await asyncio.sleep(0)
        assert len(invoker.started) == 4
        invoker.gates["busy"].release()  # half the slots are free: lease two at once
        await _until(invoker, lambda: len(invoker.started) == 6)
        assert queue.batches == [4, 2]
    finally:
        dispatcher.stop()
        for _ in range(12):
            invoker.gates["busy"].release()
        await asyncio.wait_for(runner, DEADLINE_S)
    assert [event_id for _, event_id in invoker.started] == [f"e{n}" for n in range(6)]


class SlowAckQueue(MemoryQueue):
    """Holds every ack until ``acks`` is set: a store whose commits are slow."""

    def __init__(self) -> None:
        super().__init__()
        self.acks = asyncio.Event()
        self.waiting = 0

    async def ack(self, delivery: Delivery, attempt: Any) -> None:
        self.waiting += 1
        await self.acks.wait()
        await super().ack(delivery, attempt)


async def test_a_slot_frees_when_the_call_ends_not_when_its_ack_is_written() -> None:
    queue = SlowAckQueue()
    invoker = GatedInvoker()
    dispatcher = Dispatcher(queue, invoker, Table, per_subscription=1)  # type: ignore[arg-type]
    await _put(queue, "one", "e1", "e2")
    runner = asyncio.create_task(dispatcher.run())
    try:
        await _until(invoker, lambda: len(invoker.started) == 1)
        invoker.gates["one"].release()  # e1's call ends; its ack waits on the store

        await _until(invoker, lambda: len(invoker.started) == 2)
        assert queue.waiting == 1  # e2 was called while e1's ack was still unwritten
        assert queue.backlog() == 2
    finally:
        dispatcher.stop()
        invoker.gates["one"].release()
        queue.acks.set()
        await asyncio.wait_for(runner, DEADLINE_S)
    assert queue.backlog() == 0


class RecordingInvoker:
    """Records what each call was given; every call succeeds."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.called = asyncio.Event()

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.calls.append({"event": event, **kw})
        self.called.set()
        return Outcome(ok=True, reply=Reply(status=200, body=b""))

    async def authorize(self, authorizer: Any, event: CloudEvent, request: Any) -> Any:
        return SimpleNamespace(allowed=True, authorization={"principalId": "ada"}, error="")


class AuthorizedTable(Table):
    def target(self, space: str, subscription_id: str) -> Any:
        return SimpleNamespace(
            authorizer_id="auth",
            authorizer=SimpleNamespace(function_id="auth"),
            function=SimpleNamespace(function_id=subscription_id),
            subscription=SimpleNamespace(retry_policy=None),
        )


@pytest.mark.parametrize(("table", "sends_stored"), [(Table(), True), (AuthorizedTable(), False)])
async def test_the_stored_form_is_sent_unless_an_authorizer_changed_the_event(
    table: Table, sends_stored: bool
) -> None:
    queue = MemoryQueue()
    invoker = RecordingInvoker()
    dispatcher = Dispatcher(queue, invoker, lambda: table)  # type: ignore[arg-type]
    await _put(queue, "s1", "e1")
    await run_until(dispatcher, invoker.called, DEADLINE_S)
    [call] = invoker.calls
    if sends_stored:
        assert call["encoded"] == encode_event(call["event"])  # the queue's stored body
    else:
        assert call["encoded"] is None  # the event now carries the authorization


class FanOutInvoker(RecordingInvoker):
    """Also tells when the three calls of a fan-out to a, b and c were made."""

    def __init__(self) -> None:
        super().__init__()
        self.all_called = asyncio.Event()

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        outcome = await super().call(function, event, **kw)
        if len(self.calls) == 3:
            self.all_called.set()
        return outcome


class PerSubscriptionAuthorizer(FanOutInvoker):
    """Authorizes each delivery as its subscription's own principal; keeps what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[CloudEvent] = []

    async def authorize(self, authorizer: Any, event: CloudEvent, request: Any) -> Any:
        self.seen.append(event)
        principal = authorizer.function_id  # the table names it after the subscription
        return SimpleNamespace(allowed=True, authorization={"principalId": principal}, error="")


class PerSubscriptionAuthorizedTable(Table):
    def target(self, space: str, subscription_id: str) -> Any:
        return SimpleNamespace(
            authorizer_id="auth",
            authorizer=SimpleNamespace(function_id=f"principal-{subscription_id}"),
            function=SimpleNamespace(function_id=subscription_id),
            subscription=SimpleNamespace(retry_policy=None),
        )


async def _fan_out(table: Table, invoker: FanOutInvoker) -> None:
    """One event to subscriptions a, b and c, dispatched until the three calls ran."""
    queue = MemoryQueue()
    dispatcher = Dispatcher(queue, invoker, lambda: table)  # type: ignore[arg-type]
    fan_out = [NewDelivery(space="s", subscription_id=s, function_id=s) for s in "abc"]
    await queue.accept([Accepted(_event("e1"), fan_out)])
    await run_until(dispatcher, invoker.all_called, DEADLINE_S)


async def test_a_fan_out_shares_the_event_and_no_delivery_changes_it_for_another() -> None:
    # The deliveries of one event share its CloudEvent object (no copy per delivery)...
    plain = FanOutInvoker()
    await _fan_out(Table(), plain)
    assert len({id(call["event"]) for call in plain.calls}) == 1

    # ...so what one delivery changes (an authorizer's result) goes on a copy of its own.
    authorized = PerSubscriptionAuthorizer()
    await _fan_out(PerSubscriptionAuthorizedTable(), authorized)
    got = sorted(call["event"].extensions["authorization"] for call in authorized.calls)
    assert got == [f'{{"principalId":"principal-{s}"}}' for s in "abc"]
    assert len({id(event) for event in authorized.seen}) == 1  # the shared one...
    assert "authorization" not in authorized.seen[0].extensions  # ...is unchanged


LOCAL = RuntimeLimit(("s", "local"), 2)


class SharedFunctionTable(Table):
    """Subscriptions ``a`` and ``b`` both deliver to local-runtime function ``local``."""

    def runtime_limits(self) -> dict[str, RuntimeLimit]:
        return {"a": LOCAL, "b": LOCAL}


class CountingInvoker(GatedInvoker):
    """Also counts the calls running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most_running = 0

    async def call(self, function: Any, event: CloudEvent, **kw: Any) -> Outcome:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            return await super().call(function, event, **kw)
        finally:
            self.running -= 1


async def _put_shared(queue: MemoryQueue, subscription_id: str, *event_ids: str) -> None:
    for event_id in event_ids:
        delivery = NewDelivery(space="s", subscription_id=subscription_id, function_id="local")
        await queue.accept([Accepted(_event(event_id), [delivery])])


async def test_subscriptions_of_one_local_runtime_function_share_its_concurrency() -> None:
    # QA: the bound was per subscription, so two subscriptions of a function with
    # concurrency 2 had 4 deliveries started, 2 of them waiting in the gateway for a worker.
    queue = MemoryQueue()
    invoker = CountingInvoker()
    dispatcher = Dispatcher(queue, invoker, SharedFunctionTable, per_subscription=8)  # type: ignore[arg-type]
    await _put_shared(queue, "a", "a1", "a2", "a3")
    await _put_shared(queue, "b", "b1", "b2", "b3")
    runner = asyncio.create_task(dispatcher.run())
    try:
        for done in range(6):
            expected = min(6, done + 2)  # two running; each release lets the next start
            await _until(invoker, lambda n=expected: len(invoker.started) == n)
            invoker.gates["local"].release()
    finally:
        dispatcher.stop()
        await asyncio.wait_for(runner, DEADLINE_S)
    started = sorted(event_id for _, event_id in invoker.started)
    assert started == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert invoker.most_running == 2
    assert queue.backlog() == 0


async def test_a_stopping_dispatcher_starts_no_held_delivery() -> None:
    queue = MemoryQueue()
    invoker = CountingInvoker()
    dispatcher = Dispatcher(queue, invoker, SharedFunctionTable, per_subscription=8)  # type: ignore[arg-type]
    await _put_shared(queue, "a", "a1", "a2")
    await _put_shared(queue, "b", "b1", "b2")
    runner = asyncio.create_task(dispatcher.run())
    await _until(invoker, lambda: len(invoker.started) == 2)
    dispatcher.stop()
    for _ in range(4):
        invoker.gates["local"].release()
    await asyncio.wait_for(runner, DEADLINE_S)

    assert len(invoker.started) == 2  # the held ones were never attempted...
    assert queue.backlog() == 2  # ...and stay queued, leased until their leases run out


class FullDiskQueue(MemoryQueue):
    """Every ack fails as a full disk makes it fail; ``acked`` is set at the first."""

    def __init__(self) -> None:
        super().__init__()
        self.acked = asyncio.Event()

    async def ack(self, delivery: Delivery, attempt: Any = None) -> None:
        self.acked.set()
        raise StorageFullError("the SQLite queue queue.db failed to commit: disk is full")


async def test_a_settle_the_store_refuses_is_one_warning_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # QA: on a full disk each failed ack logged ERROR "failed unexpectedly" + a traceback.
    queue = FullDiskQueue()
    invoker = GatedInvoker()
    invoker.gates["fine"].release()
    dispatcher = Dispatcher(queue, invoker, Table)  # type: ignore[arg-type]
    await _put(queue, "fine", "f1")
    await run_until(dispatcher, queue.acked, DEADLINE_S)

    records = [r for r in caplog.records if r.name == "eventgateway.dispatch.dispatcher"]
    assert [(r.levelname, r.exc_info) for r in records] == [("WARNING", None)]
    assert (
        records[0]
        .getMessage()
        .endswith(
            "could not be settled; its lease will expire and it will be retried: "
            "the SQLite queue queue.db failed to commit: disk is full"
        )
    )
