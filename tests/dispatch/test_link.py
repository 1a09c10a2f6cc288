"""``--dispatch worker`` pieces, in one process: the link's wire messages, the gateway's
:class:`DispatchLink` and the worker's :class:`DispatchHost` over a real UNIX socket, a
real :class:`SqliteQueue` and a real HTTP receiver; and two queue writers on one file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgspec
import pytest

from eventgateway.dispatch import host as host_module
from eventgateway.dispatch.host import DispatchHost
from eventgateway.dispatch.link import DispatchLink, routing_message
from eventgateway.dispatch.link_wire import (
    BackCall,
    BackReply,
    Credit,
    Drain,
    Drained,
    Enqueue,
    Handed,
    QueuedEvent,
    Resync,
    Routing,
    Stats,
    Wake,
    decode_message,
)
from eventgateway.errors import ProviderError
from eventgateway.model.entities import Cors, EventType, Function, Subscription, encode_entity
from eventgateway.providers.base import Call, Provider, Reply
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.providers.remote import frames
from eventgateway.queue.base import Accepted, AttemptRecord, NewDelivery
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.queue.sqlite_handoff import HandedEvent
from eventgateway.routing.sync import RoutingSync
from eventgateway.routing.table import RoutingTable
from eventgateway.store.memory import MemoryStore
from tests.queue.kit import event
from tests.support.receiver import Receiver
from tests.support.receiver import Reply as ReceiverReply

DEADLINE_S = 5.0
SPACE = "acme"
DELIVERED = AttemptRecord(started_at=0.0, duration_s=0.01, outcome="delivered", status=200)


# -- builders ---------------------------------------------------------------------------------


def function(function_id: str, *, type: str = "http", url: str = "http://f/") -> Function:
    return Function(space=SPACE, function_id=function_id, type=type, provider={"url": url})


def sub(subscription_id: str, function_id: str) -> Subscription:
    return Subscription(
        space=SPACE,
        subscription_id=subscription_id,
        type="async",
        event_type="user.created",
        function_id=function_id,
        path="/",
        method="POST",
    )


def routing(functions: list[Function], subs: list[Subscription], revision: int = 1) -> Routing:
    return Routing(revision, [EventType(SPACE, "user.created")], functions, subs, [])


def to(subscription_id: str, function_id: str) -> NewDelivery:
    return NewDelivery(SPACE, subscription_id, function_id)


async def put(queue: SqliteQueue, event_id: str, subscription_id: str, function_id: str) -> None:
    await queue.accept([Accepted(event(event_id), [to(subscription_id, function_id)])])


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Wait until ``predicate()`` holds; fail after ``DEADLINE_S``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE_S
    while not predicate():
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def state_of(queue: SqliteQueue, event_id: str) -> tuple[str, str]:
    view = await queue.get_event(SPACE, event_id)
    assert view is not None
    (delivery,) = view.deliveries
    return delivery.state, delivery.last_error


class Hooks:
    """Stands in for the gateway's MetricsHooks: records what the worker's Stats carried."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, float]] = []
        self.settled: list[tuple[str, str, float]] = []
        self.dropped: list[tuple[str, str]] = []

    def count_attempt(self, outcome: str, duration_s: float) -> None:
        self.attempts.append((outcome, duration_s))

    def count_settle(self, space: str, state: str, age_s: float) -> None:
        self.settled.append((space, state, age_s))

    def count_dropped(self, space: str, event_type: str) -> None:
        self.dropped.append((space, event_type))

    def states(self) -> list[str]:
        return [state for _, state, _ in self.settled]


class RecordingProvider(Provider):
    """The gateway's provider of a non-http type (the local runtime's stand-in)."""

    def __init__(self, error: ProviderError | None = None) -> None:
        self.calls: list[tuple[Function, Call]] = []
        self.error = error

    async def call(self, function: Function, call: Call) -> Reply:
        self.calls.append((function, call))
        if self.error is not None:
            raise self.error
        return Reply(status=200, body=b'{"ok":true}', headers=[("x-ran", "gateway")])


class Rig:
    """A worker (DispatchHost serving a socket) and the gateway's DispatchLink to it."""

    def __init__(self, config: Routing) -> None:
        self.config = config  # what the gateway's ``routing`` callable answers now
        self.routings_sent = 0
        self.hooks = Hooks()
        self.host: DispatchHost
        self.link: DispatchLink
        self.queue: SqliteQueue  # the worker's connection to the queue file

    def routing(self) -> Routing:
        self.routings_sent += 1
        return self.config

    def table(self) -> RoutingTable:
        c = self.config
        return RoutingTable.build(
            event_types=c.event_types,
            functions=c.functions,
            subscriptions=c.subscriptions,
            cors=c.cors,
            revision=c.revision,
        )


@pytest.fixture
def sock_dir() -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix="eg-") as name:  # AF_UNIX paths are short
        yield pathlib.Path(name)


@contextlib.asynccontextmanager
async def rig(
    db: pathlib.Path,
    sock_dir: pathlib.Path,
    config: Routing,
    providers: ProviderRegistry | None = None,
    fast: MemoryQueue | None = None,
) -> AsyncIterator[Rig]:
    r = Rig(config)
    r.queue = SqliteQueue(db)
    await r.queue.open()
    http = HttpProvider()
    fast = fast or MemoryQueue()  # the worker's at-most-once queue
    r.host = DispatchHost(r.queue, fast, http, concurrency=8, per_subscription=4, timeout_s=5.0)
    path = sock_dir / "dispatch.sock"
    server = await asyncio.start_unix_server(r.host.serve_connection, path=str(path))
    runner = asyncio.create_task(r.host.run())
    r.link = DispatchLink(
        path,
        routing=r.routing,
        table=r.table,
        providers=providers or ProviderRegistry({}),
        hooks=r.hooks,  # type: ignore[arg-type]  # the two methods the link calls
    )
    await r.link.start()
    try:
        await asyncio.wait_for(r.link.connected.wait(), DEADLINE_S)
        await eventually(lambda: r.host.table().revision == config.revision, "the routing")
        yield r
    finally:
        await r.link.close()
        r.host.stop()
        await asyncio.wait_for(runner, DEADLINE_S)
        server.close()
        await asyncio.wait_for(server.wait_closed(), DEADLINE_S)
        await r.host.system.drain()
        await r.queue.close()
        await http.close()


# -- 1, 2: the wire ------------------------------------------------------------------------------


def test_every_message_round_trips_through_msgpack() -> None:
    messages: list[Any] = [
        routing([function("fn", url="http://x/")], [sub("s1", "fn")], revision=7),
        Wake(),
        Drain(),
        Drained(),
        Resync(),
        BackCall(3, SPACE, "fn", b"\x00body", "text/plain", [("a", "1")], 2.5),
        BackReply(3, 200, [("b", "2")], b"out"),
        BackReply(4, 503, error="down", retryable=False, retry_after_s=1.5),
        Stats([("delivered", 0.25), ("failed", 1.0)], [(SPACE, "delivered", 3.0)]),
        Stats([], [], [(SPACE, "user.created")]),
        Enqueue([QueuedEvent(b'{"id":"e1"}', [(SPACE, "s1", "fn", "k", {"a": 1})], "t")]),
        Handed([HandedEvent(b'{"id":"e1"}', 1.5, 61.5, [(7, SPACE, "s1", "fn", b"{}")])]),
        Credit(1024),
    ]
    for message in messages:
        assert decode_message(msgspec.msgpack.encode(message)) == message
    assert len({type(m) for m in messages}) == 11


@pytest.mark.parametrize(
    "payload",
    [b"\xc1", b"garbage", msgspec.msgpack.encode(["nope"]), msgspec.msgpack.encode({"a": 1})],
)
def test_a_garbage_payload_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_message(payload)


async def test_routing_message_carries_the_entities_of_a_routing_sync() -> None:
    store = MemoryStore()
    entities: list[Any] = [
        EventType(SPACE, "user.created"),
        function("fn", url="http://f/"),
        sub("s1", "fn"),
        Cors(SPACE, "c1", "POST", "/", ["*"], ["POST"], ["Content-Type"], False),
    ]
    kinds = ["eventtypes", "functions", "subscriptions", "cors"]
    for kind, entity in zip(kinds, entities, strict=True):
        await store.create(kind, SPACE, entity.key, encode_entity(entity))  # type: ignore[arg-type]
    sync = RoutingSync(store)
    await sync.refresh()

    message = routing_message(sync)

    assert message.revision == sync.revision == 4
    assert message.event_types == [entities[0]]
    assert message.functions == [entities[1]]
    assert message.subscriptions == [entities[2]]
    assert message.cors == [entities[3]]
    assert decode_message(msgspec.msgpack.encode(message)) == message


# -- 3–6: link ↔ host --------------------------------------------------------------------------


async def test_the_host_delivers_is_woken_by_the_link_and_reports_stats(
    receiver: Receiver, tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    db = tmp_path / "queue.db"
    config = routing([function("fn", url=receiver.url("/fn"))], [sub("s1", "fn")], revision=3)
    async with rig(db, sock_dir, config) as r:
        assert r.host.table().target(SPACE, "s1") is not None  # the Routing sent on connect
        gateway = SqliteQueue(db)  # the gateway process's own handle on the file
        await gateway.open()
        try:
            gateway.on_commit_wake = r.link.wake
            await put(gateway, "e1", "s1", "fn")
            await eventually(lambda: r.hooks.states() == ["delivered"], "e1 settled")
            assert [call.json()["id"] for call in receiver.calls_to("/fn")] == ["e1"]

            # The worker's lease now waits; a commit it is not told about stays unseen...
            gateway.on_commit_wake = None
            await put(gateway, "e2", "s1", "fn")
            with pytest.raises(TimeoutError):
                await receiver.wait_for(2, "/fn", timeout_s=0.3)
            # ...until the link wakes it.
            r.link.wake()
            await receiver.wait_for(2, "/fn", timeout_s=DEADLINE_S)
            await eventually(lambda: len(r.hooks.settled) == 2, "e2 settled")
        finally:
            await gateway.close()

        assert [outcome for outcome, _ in r.hooks.attempts] == ["delivered", "delivered"]
        assert all(duration >= 0 for _, duration in r.hooks.attempts)
        assert [(space, state) for space, state, _ in r.hooks.settled] == [
            (SPACE, "delivered"),
            (SPACE, "delivered"),
        ]
        assert await state_of(r.queue, "e1") == ("delivered", "")
        assert await state_of(r.queue, "e2") == ("delivered", "")


async def test_a_delivery_for_an_unknown_subscription_resyncs_rather_than_skips(
    receiver: Receiver, tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    fn = function("fn", url=receiver.url("/new"))
    async with rig(tmp_path / "queue.db", sock_dir, routing([fn], [], revision=1)) as r:
        assert r.host.table().target(SPACE, "s-new") is None
        sent_before = r.routings_sent
        r.config = routing([fn], [sub("s-new", "fn")], revision=2)  # changed, not published

        await put(r.queue, "e1", "s-new", "fn")

        await receiver.wait_for(1, "/new", timeout_s=DEADLINE_S)
        await eventually(lambda: len(r.hooks.settled) == 1, "the settlement")
        assert r.routings_sent == sent_before + 1  # answered the Resync
        assert r.host.table().revision == 2
        assert [outcome for outcome, _ in r.hooks.attempts] == ["delivered"]
        assert r.hooks.states() == ["delivered"]
        assert await state_of(r.queue, "e1") == ("delivered", "")


async def test_a_non_http_function_is_called_back_in_the_gateway(
    tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    provider = RecordingProvider()
    config = routing([function("fn-py", type="python")], [sub("s1", "fn-py")])
    providers = ProviderRegistry({"python": provider})
    async with rig(tmp_path / "queue.db", sock_dir, config, providers) as r:
        await put(r.queue, "e1", "s1", "fn-py")
        await eventually(lambda: len(r.hooks.settled) == 1, "the settlement")
        assert r.hooks.states() == ["delivered"]
        assert [outcome for outcome, _ in r.hooks.attempts] == ["delivered"]
        assert await state_of(r.queue, "e1") == ("delivered", "")

    ((called, call),) = provider.calls
    assert (called.space, called.function_id, called.type) == (SPACE, "fn-py", "python")
    assert json.loads(call.body)["id"] == "e1"
    assert call.content_type == "application/cloudevents+json"
    assert call.timeout_s == 5.0  # the default retry policy's attempt timeout


async def test_an_error_of_the_gateway_provider_is_a_failed_attempt(
    tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    provider = RecordingProvider(ProviderError("handler crashed: boom", retryable=False))
    config = routing([function("fn-py", type="python")], [sub("s1", "fn-py")])
    providers = ProviderRegistry({"python": provider})
    async with rig(tmp_path / "queue.db", sock_dir, config, providers) as r:
        await put(r.queue, "e1", "s1", "fn-py")
        await eventually(lambda: len(r.hooks.settled) == 1, "the settlement")
        assert [outcome for outcome, _ in r.hooks.attempts] == ["failed"]
        assert r.hooks.states() == ["dead"]  # not retryable: given up at once
        state, error = await state_of(r.queue, "e1")
    assert state == "dead"
    assert "handler crashed: boom" in error
    assert len(provider.calls) == 1


async def test_the_worker_keeps_an_at_most_once_frame_body_without_encoding_it_again(
    tmp_path: pathlib.Path, sock_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = MemoryQueue()
    async with rig(tmp_path / "q.db", sock_dir, routing([], []), fast=fast) as r:
        r.host.dispatchers[1].stop()  # the at-most-once dispatcher: leave the buffer alone
        sent = event("e1")

        def no_encoding(_event: object) -> bytes:
            raise AssertionError("the worker encoded an event the frame carried encoded")

        monkeypatch.setattr("eventgateway.queue.memory.encode_event", no_encoding)
        assert r.link.enqueue([Accepted(sent, [to("s1", "fn")])]) is True
        await eventually(lambda: fast.backlog() == 1, "the event in the worker's buffer")
        (leased,) = await fast.lease(1)
        assert leased.event == sent
        assert leased.body is not None
        assert json.loads(leased.body)["id"] == "e1"


async def test_a_full_at_most_once_buffer_drops_frames_undecoded_and_counts_each_delivery(
    tmp_path: pathlib.Path, sock_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = MemoryQueue(max_deliveries=1)
    async with rig(tmp_path / "q.db", sock_dir, routing([], []), fast=fast) as r:
        r.host.dispatchers[1].stop()  # nothing leaves the buffer: it stays full
        decoded: list[bytes] = []
        real = host_module.decode_event

        def counting(body: bytes) -> Any:
            decoded.append(body)
            return real(body)

        monkeypatch.setattr(host_module, "decode_event", counting)
        assert r.link.enqueue([Accepted(event("kept"), [to("s1", "fn")])]) is True
        await eventually(lambda: fast.backlog() == 1, "the buffer full")
        r.link.enqueue([Accepted(event("e2"), [to("s1", "fn"), to("s2", "fn")])])
        r.link.enqueue([Accepted(event("e3"), [to("s1", "fn")])])
        await eventually(lambda: len(r.hooks.dropped) == 3, "three drops counted")

        assert r.hooks.dropped == [(SPACE, "user.created")] * 3  # one per delivery
        assert len(decoded) == 1  # only the event that fitted was decoded
        assert fast.backlog() == 1


async def test_drain_waits_for_the_delivery_in_flight(
    receiver: Receiver, tmp_path: pathlib.Path, sock_dir: pathlib.Path
) -> None:
    receiver.reply("/slow", ReceiverReply(delay_s=0.5))
    config = routing([function("fn", url=receiver.url("/slow"))], [sub("s1", "fn")])
    async with rig(tmp_path / "queue.db", sock_dir, config) as r:
        await put(r.queue, "e1", "s1", "fn")
        await eventually(lambda: r.host.dispatchers[0].in_flight == 1, "the call in flight")
        assert r.hooks.settled == []

        assert await r.link.drain(DEADLINE_S) is True

        # Settled, counted and written before Drained came back.
        assert len(receiver.calls_to("/slow")) == 1
        assert r.hooks.states() == ["delivered"]
        assert r.host.dispatchers[0].in_flight == 0
        assert await state_of(r.queue, "e1") == ("delivered", "")


async def test_drain_without_a_worker_is_false(sock_dir: pathlib.Path) -> None:
    link = DispatchLink(
        sock_dir / "absent.sock",
        routing=lambda: routing([], []),
        table=RoutingTable.empty,
        providers=ProviderRegistry({}),
        hooks=Hooks(),  # type: ignore[arg-type]
    )
    assert await link.drain(DEADLINE_S) is False  # not started
    await link.start()
    try:
        assert await asyncio.wait_for(link.drain(DEADLINE_S), 1.0) is False  # answers at once
    finally:
        await link.close()


async def test_at_most_once_events_of_one_iteration_go_as_one_frame_in_order(
    sock_dir: pathlib.Path,
) -> None:
    # A stand-in worker that records every frame the link writes.
    path = sock_dir / "recording.sock"
    received: list[Any] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for message in frames(reader, decode_message, "test"):
                received.append(message)
        finally:
            writer.close()

    server = await asyncio.start_unix_server(record, path=str(path))
    link = DispatchLink(
        path,
        routing=lambda: routing([], [], revision=7),
        table=RoutingTable.empty,
        providers=ProviderRegistry({}),
        hooks=Hooks(),  # type: ignore[arg-type]
    )
    assert link.enqueue([Accepted(event("early"), [to("s1", "fn")])]) is False  # not linked
    await link.start()
    try:
        await asyncio.wait_for(link.connected.wait(), DEADLINE_S)
        # Three requests served in one loop iteration, then a message of another kind.
        for name in ("e1", "e2", "e3"):
            assert link.enqueue([Accepted(event(name), [to("s1", "fn")])]) is True
        link.enqueue([Accepted(event("no-deliveries"), [])])  # nothing to send for it
        link.wake()
        # The next iteration's events: one more frame, at the end of that iteration.
        link.enqueue([Accepted(event("e4"), [to("s1", "fn")]), Accepted(event("e5"), [])])
        await eventually(lambda: len(received) == 4, "four frames")
    finally:
        await link.close()
        server.close()
        await server.wait_closed()

    routing_frame, first, wake, second = received
    assert isinstance(routing_frame, Routing)
    assert routing_frame.revision == 7
    assert isinstance(first, Enqueue)
    assert isinstance(second, Enqueue)
    # Queued events go before the frame that follows them: the order they were sent in.
    assert isinstance(wake, Wake)
    ids = [[json.loads(queued.body)["id"] for queued in frame.events] for frame in (first, second)]
    assert ids == [["e1", "e2", "e3"], ["e4"]]
    assert first.events[0].deliveries == [(SPACE, "s1", "fn", None, None)]


async def test_a_worker_that_stops_reading_does_not_make_the_gateway_buffer_without_bound(
    sock_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in worker that accepts the link and never reads: frames pile up on the socket.
    monkeypatch.setattr("eventgateway.dispatch.link._MAX_UNSENT_BYTES", 1024 * 1024)
    path = sock_dir / "stalled.sock"
    stalled: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_unix_server(hold, path=str(path))
    link = DispatchLink(
        path,
        routing=lambda: routing([], []),
        table=RoutingTable.empty,
        providers=ProviderRegistry({}),
        hooks=Hooks(),  # type: ignore[arg-type]
    )
    await link.start()
    big = msgspec.Raw(msgspec.json.encode({"pad": "x" * 64 * 1024}))
    try:
        await asyncio.wait_for(link.connected.wait(), DEADLINE_S)
        accepted = 0
        for n in range(2_000):  # 128 MiB if every one were taken
            if not link.enqueue([Accepted(event(f"e{n}", data=big), [to("s1", "fn")])]):
                break
            accepted += 1
            await asyncio.sleep(0)  # the end of a loop iteration: the frame is written
        writer = link._writer
        assert writer is not None
        unsent = writer.transport.get_write_buffer_size()
    finally:
        await link.close()
        for writer in stalled:
            writer.close()
        server.close()
        await server.wait_closed()

    assert 0 < accepted < 2_000
    assert unsent <= 1024 * 1024 + 70 * 1024  # the bound, and at most one more frame


# -- 7: two writers on one file ------------------------------------------------------------------


async def test_two_queue_writers_on_one_file_both_make_progress(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "queue.db"
    # No busy wait at all: only the writers' flock keeps them from SQLITE_BUSY.
    ingest = SqliteQueue(db, busy_timeout_s=0.0)
    worker = SqliteQueue(db, busy_timeout_s=0.0)
    await ingest.open()
    await worker.open()
    per_writer = 200
    try:

        async def accept_all(queue: SqliteQueue, prefix: str) -> None:
            await asyncio.gather(
                *(put(queue, f"{prefix}{n}", "s1", "fn") for n in range(per_writer))
            )

        async def lease_and_ack(queue: SqliteQueue, count: int) -> None:
            acked = 0
            while acked < count:
                queue.notify()  # the other writer's commits are not signalled here
                batch = await asyncio.wait_for(queue.lease(min(50, count - acked)), DEADLINE_S)
                for delivery in batch:
                    await queue.ack(delivery, DELIVERED)
                    acked += 1

        await asyncio.wait_for(
            asyncio.gather(
                accept_all(ingest, "i"),
                accept_all(worker, "w"),
                lease_and_ack(worker, per_writer),
            ),
            20,
        )
        await ingest.accept([Accepted(event("last"), [to("s1", "fn")])])
        # 400 accepted by both, 200 acked by the worker, 1 more: read back in ingest's commit.
        assert ingest.backlog() == per_writer + 1
        assert ingest.stats()["failed_batches"] == worker.stats()["failed_batches"] == 0
    finally:
        await ingest.close()
        await worker.close()
