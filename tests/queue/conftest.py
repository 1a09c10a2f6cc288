"""Fixtures of the queue tests: a fake clock, SQLite queues opened on one file, and
JetStream queues on one fresh prefix."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.queue.jetstream import JetStreamQueue
from eventgateway.queue.sqlite import SqliteQueue
from tests.queue.kit import NATS_URL, FakeClock, MakeJS, OpenSqlite, delete_streams, require_nats


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "queue.db"


@pytest.fixture
async def open_queue(path: pathlib.Path, clock: FakeClock) -> AsyncIterator[OpenSqlite]:
    """Opens queues on ``path`` (several may share it); closes them after the test."""
    opened: list[SqliteQueue] = []

    async def make(**kw: Any) -> SqliteQueue:
        kw.setdefault("clock", clock)
        queue = SqliteQueue(path, **kw)
        await queue.open()
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        await queue.close()


@pytest.fixture
async def make() -> AsyncIterator[MakeJS]:
    """Opened JetStream queues that share one fresh prefix (so, one stream and one
    consumer); their streams are deleted afterwards. Keywords go to the queue."""
    require_nats()
    prefix = f"egtest-{uuid.uuid4().hex[:12]}"
    made: list[JetStreamQueue] = []

    async def factory(**kw: Any) -> JetStreamQueue:
        kw.setdefault("fetch_wait_s", 1.0)
        kw.setdefault("backlog_refresh_s", 0.0)
        queue = JetStreamQueue(NATS_URL, prefix=prefix, **kw)
        await queue.open()
        made.append(queue)
        return queue

    yield factory
    for queue in made:
        await queue.close()
    if made:
        await delete_streams(made[0])
