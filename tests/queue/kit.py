"""Shared by the queue contract suites and the SQLite-only tests: backends, a fake clock,
and builders for events and attempts.

Add a backend by adding a factory to ``BACKENDS``; the contract suites in
``tests/contract/test_queue.py`` and ``test_delivery_log.py`` must pass unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec
import pytest

from eventgateway.events.model import CloudEvent
from eventgateway.queue.base import Accepted, AttemptRecord, Delivery, NewDelivery
from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.sqlite import SqliteQueue

DEADLINE_S = 5.0
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SPACE = "acme"


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


NATS_URL = os.environ.get("EG_TEST_NATS_URL", "nats://127.0.0.1:4222")

Queue = MemoryQueue | SqliteQueue | JetStreamQueue
MakeQueue = Callable[..., Awaitable[Queue]]
OpenSqlite = Callable[..., Awaitable[SqliteQueue]]  # the ``open_queue`` fixture (conftest.py)
MakeJS = Callable[..., Awaitable[JetStreamQueue]]  # the ``make`` fixture (conftest.py)


class Factory(Protocol):
    def __call__(
        self, tmp_path: pathlib.Path, clock: Callable[[], float], **limits: Any
    ) -> Queue: ...


BACKENDS: dict[str, Factory] = {
    "memory": lambda tmp_path, clock, **limits: MemoryQueue(clock=clock, **limits),
    "sqlite": lambda tmp_path, clock, **limits: SqliteQueue(
        tmp_path / "queue.db", clock=clock, **limits
    ),
    # A unique prefix per queue, so tests never share streams; ``queues`` deletes them.
    "jetstream": lambda tmp_path, clock, **limits: JetStreamQueue(
        NATS_URL,
        prefix=f"egtest-{uuid.uuid4().hex[:12]}",
        clock=clock,
        fetch_wait_s=1.0,
        backlog_refresh_s=0.0,
        **limits,
    ),
}


def require_nats() -> None:
    """Skip when no NATS server listens at ``NATS_URL``; in CI (``CI`` set), fail instead."""
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=1.0).close()
    except OSError as exc:
        message = f"no NATS server at {NATS_URL} ({exc}); start one with `nats-server -js`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


async def delete_streams(queue: JetStreamQueue) -> None:
    """Delete every stream of ``queue``'s prefix (its consumer goes with its stream)."""
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        for name in queue.names.streams:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def queues(
    backend: str, tmp_path: pathlib.Path, clock: FakeClock
) -> AsyncIterator[MakeQueue]:
    """A factory for opened queues of ``backend``; closes them all on exit.

    Test modules wrap it in their ``make_queue`` fixture, parametrised over ``BACKENDS``.
    """
    if backend == "jetstream":
        require_nats()
    made: list[Queue] = []

    async def make(clock_fn: Callable[[], float] = clock, **limits: Any) -> Queue:
        queue = BACKENDS[backend](tmp_path / f"q{len(made)}", clock_fn, **limits)
        await queue.open()
        made.append(queue)
        return queue

    try:
        yield make
    finally:
        for queue in made:
            await queue.close()
            if isinstance(queue, JetStreamQueue):
                await delete_streams(queue)


def event(event_id: str = "e1", *, source: str = "test", data: Any = None, **kw: Any) -> CloudEvent:
    """A CloudEvents 1.0 event whose data is raw JSON ``{"n": <id>}`` unless given."""
    if data is None:
        data = msgspec.Raw(msgspec.json.encode({"n": event_id}))
    return CloudEvent("1.0", event_id, source, "user.created", data=data, **kw)


def to(
    *subscriptions: str, space: str = SPACE, key: str | None = None, **kw: Any
) -> list[NewDelivery]:
    """One delivery per subscription id; the function id is ``fn-<subscription>``."""
    return [NewDelivery(space, sub, f"fn-{sub}", partition_key=key, **kw) for sub in subscriptions]


def accepted(event_id: str, *subscriptions: str, **kw: Any) -> Accepted:
    source = kw.pop("source", "test")
    return Accepted(event(event_id, source=source), to(*subscriptions, **kw))


async def put(queue: Queue, event_id: str, *subscriptions: str, **kw: Any) -> bool:
    """Accept one event for ``subscriptions``; returns its duplicate flag."""
    (duplicate,) = await queue.accept([accepted(event_id, *subscriptions, **kw)])
    return duplicate


def attempt(
    outcome: str = "delivered",
    status: int | None = 200,
    error: str = "",
    *,
    started_at: float = T0,
    duration_s: float = 0.25,
    excerpt: str = "",
) -> AttemptRecord:
    return AttemptRecord(
        started_at=started_at,
        duration_s=duration_s,
        outcome=outcome,  # type: ignore[arg-type]
        status=status,
        error=error,
        response_excerpt=excerpt,
    )


def ids(deliveries: Sequence[Any]) -> list[tuple[str, str]]:
    """(event id, subscription id) per delivery, in order."""
    return [(d.event.id, d.subscription_id) for d in deliveries]


async def lease(queue: Queue, max_count: int = 100) -> list[Delivery]:
    """What ``queue`` leases, failing the test past ``DEADLINE_S``."""
    return await asyncio.wait_for(queue.lease(max_count), DEADLINE_S)


async def round_trips(queue: SqliteQueue, count: int) -> int:
    """Make ``count`` writer transactions that wake nobody, one after the other (renewals
    of a lease nobody holds); how many ops the writer ran meanwhile, other than these.

    A lease that looks at the file again and again shows up here, whatever the speed of
    the machine: each of its looks is an op.
    """
    nobody = Delivery("999999", SPACE, "none", "fn-none", event("x"), 0.0, lease_until=1.0)
    before = queue.stats()["items"]
    for _ in range(count):
        await queue.extend([nobody])
    return queue.stats()["items"] - before - count


def hold_write_lock(path: pathlib.Path) -> sqlite3.Connection:
    """Another writer of the file (an operator's sqlite3 shell, a backup) holding its lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def let_go(other: sqlite3.Connection) -> None:
    other.execute("ROLLBACK")
    other.close()


@contextlib.asynccontextmanager
async def jetstream_queues(**defaults: Any) -> AsyncIterator[MakeJS]:
    """Opens JetStream queues on one fresh prefix (one stream, one consumer), with
    ``defaults`` under each call's keywords; closes them and deletes their streams."""
    require_nats()
    prefix = f"egtest-{uuid.uuid4().hex[:12]}"
    made: list[JetStreamQueue] = []

    async def factory(**kw: Any) -> JetStreamQueue:
        queue = JetStreamQueue(NATS_URL, prefix=prefix, **{**defaults, **kw})
        await queue.open()
        made.append(queue)
        return queue

    try:
        yield factory
    finally:
        for queue in made:
            await queue.close()
        if made:
            await delete_streams(made[0])
