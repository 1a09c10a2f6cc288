"""Live tails that fall behind (``runtime/logs_tail.py``): bounded memory, reading back
from the store, and what happens when the store cannot be read.

The contract over every store is in ``test_log_store.py``; here a list stands for the
store, so that a test can bound the page and make reads fail.
"""

from __future__ import annotations

import asyncio

import pytest

from eventgateway.errors import StoreError
from eventgateway.runtime.logs_tail import TailHub
from tests.runtime_logs.test_log_store import FN, SPACE, T0, line, next_line


class ListStore:
    """Lines at positions 0, 1, 2…; ``fail`` makes reads raise; ``reads`` counts them."""

    def __init__(self) -> None:
        self.lines: list = []
        self.fail: StoreError | None = None
        self.reads = 0
        self.gate: asyncio.Event | None = None  # when set, reads wait for it
        self.reading = asyncio.Event()  # a read has started
        self.hub = TailHub(self.read, max_buffered_lines=5, page_lines=10)

    def append(self, message: str) -> None:
        self.lines.append(line(message, T0 + len(self.lines)))
        self.hub.publish(len(self.lines) - 1, self.lines[-1:])

    async def read(self, space: str, function_id: str, position: int, limit: int):
        self.reads += 1
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [(at, self.lines[at]) for at in range(position, len(self.lines))][:limit]


async def test_a_tail_holds_at_most_its_buffer_and_one_page_however_far_behind():
    store = ListStore()
    tail = store.hub.open(SPACE, FN)
    for i in range(10_000):
        store.append(f"m{i}")

    got, most = [], tail.buffered
    for _ in range(10_000):
        got.append((await next_line(tail)).message)
        most = max(most, tail.buffered)

    assert got == [f"m{i}" for i in range(10_000)]
    assert most <= 5 + 10
    assert store.reads == 1000  # 9,995 lines read back, 10 a page, and the last empty page


async def test_a_store_that_cannot_be_read_costs_the_lines_it_holds_and_says_so(caplog):
    store = ListStore()
    tail = store.hub.open(SPACE, FN)
    for i in range(8):
        store.append(f"m{i}")
    store.fail = StoreError("NATS went away")

    got = [(await next_line(tail)).message for _ in range(6)]
    store.append("live again")

    assert got[:5] == [f"m{i}" for i in range(5)]
    assert got[5] == (
        "[eventgateway] 3 log lines dropped: this tail fell behind, and the log store could "
        "not be read (NATS went away)"
    )
    assert (await next_line(tail)).message == "live again"
    assert "cannot catch up: NATS went away" in caplog.text


async def test_a_cancelled_read_back_loses_nothing():
    store = ListStore()
    tail = store.hub.open(SPACE, FN)
    for i in range(8):
        store.append(f"m{i}")
    for _ in range(5):
        await next_line(tail)
    store.gate = asyncio.Event()
    reading = asyncio.create_task(anext(tail))
    await store.reading.wait()  # cancel it while it reads back: the point of this test
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    store.append("meanwhile")
    store.gate.set()

    assert [(await next_line(tail)).message for _ in range(4)] == ["m5", "m6", "m7", "meanwhile"]


async def test_a_closed_hub_ends_a_tail_behind_after_the_lines_it_holds():
    store = ListStore()
    tail = store.hub.open(SPACE, FN)
    for i in range(8):
        store.append(f"m{i}")

    store.hub.close()

    assert [item.message async for item in tail] == [f"m{i}" for i in range(5)]
    assert store.reads == 0


def test_the_page_and_buffer_must_hold_a_line():
    with pytest.raises(ValueError, match="page_lines 0 must be at least 1"):
        TailHub(ListStore().read, page_lines=0)
    with pytest.raises(ValueError, match="max_buffered_lines 0 must be at least 1"):
        TailHub(ListStore().read, max_buffered_lines=0)
