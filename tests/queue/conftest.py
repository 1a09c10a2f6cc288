"""Fixtures of the queue tests: a fake clock, SQLite queues opened on one file, and
JetStream queues on one fresh prefix."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.queue.sqlite import SqliteQueue
from tests.queue.kit import FakeClock, MakeJS, OpenSqlite, jetstream_queues


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
    async with jetstream_queues(fetch_wait_s=1.0, backlog_refresh_s=0.0) as factory:
        yield factory
