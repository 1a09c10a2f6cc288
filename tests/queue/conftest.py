"""Fixtures of the SQLite queue tests: a fake clock and queues opened on one file."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.queue.sqlite import SqliteQueue
from tests.queue.kit import FakeClock, OpenSqlite


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
