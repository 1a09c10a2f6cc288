"""One contract for every function log store (``runtime/logs.py``), then what only the
SQLite store does: survive a reopen, bound its buffer, translate sqlite3 errors.

Every store is the real thing (SQLite on a file in ``tmp_path``). Waits are conditions
under a deadline, never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sqlite3
import time
from collections.abc import AsyncIterator

import nats
import pytest

from eventgateway.errors import StoreError
from eventgateway.runtime.base import LogLine
from eventgateway.runtime.logs import MemoryLogStore, SqliteLogStore
from eventgateway.runtime.logs_nats import NatsLogStore
from eventgateway.runtime.logs_tail import LogTail
from eventgateway.runtime.logs_writer import LogWriter
from tests.support.nats_kv import NATS_URL, require_nats, unique_prefix

SPACE = "acme"
FN = "addUserToCRM"
DEADLINE_S = 5.0
T0 = 1_700_000_000.0


def line(message: str, ts: float = T0, fn: str = FN, space: str = SPACE, **kw) -> LogLine:
    return LogLine(
        space=space,
        function_id=fn,
        request_id=kw.get("request_id", "req-1"),
        timestamp=ts,
        stream=kw.get("stream", "stdout"),
        message=message,
    )


def messages(lines: list[LogLine]) -> list[str]:
    return [item.message for item in lines]


async def next_line(tail: LogTail) -> LogLine:
    async with asyncio.timeout(DEADLINE_S):
        return await anext(tail)


@contextlib.asynccontextmanager
async def nats_connection() -> AsyncIterator:
    """A connection to the test NATS server; the streams of its prefixes are deleted after."""
    require_nats()
    nc = await nats.connect(servers=[NATS_URL], connect_timeout=2, max_reconnect_attempts=0)
    prefixes: list[str] = []
    nc.test_prefixes = prefixes  # type: ignore[attr-defined]
    try:
        yield nc
    finally:
        js = nc.jetstream()
        for prefix in prefixes:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(f"{prefix}-logs")
        await nc.close()


def nats_store(nc, prefix: str | None = None, **options) -> NatsLogStore:
    if prefix is None:
        prefix = unique_prefix()
        nc.test_prefixes.append(prefix)
    return NatsLogStore(nc, prefix=prefix, **options)


@pytest.fixture(params=["memory", "sqlite", "nats"])
async def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator:
    async with contextlib.AsyncExitStack() as stack:
        kind: MemoryLogStore | SqliteLogStore | NatsLogStore
        if request.param == "memory":
            kind = MemoryLogStore(tail_buffer_lines=5)
        elif request.param == "sqlite":
            kind = SqliteLogStore(tmp_path / "logs.db", tail_buffer_lines=5)
        else:
            nc = await stack.enter_async_context(nats_connection())
            kind = nats_store(nc, tail_buffer_lines=5)
        await kind.open()
        stack.push_async_callback(kind.close)
        yield kind


# -- append and query ---------------------------------------------------------------------


async def test_query_returns_appended_lines_oldest_first_with_every_field(store):
    lines = [
        line("START RequestId: r1", T0, stream="system", request_id="r1"),
        line("Saving user to CRM:", T0 + 0.001, request_id="r1"),
        line("oops", T0 + 0.002, stream="stderr", request_id="r1"),
    ]
    store.append(lines)

    assert await store.query(SPACE, FN) == lines


async def test_limit_keeps_the_newest_lines_still_oldest_first(store):
    store.append([line(f"m{i}", T0 + i) for i in range(10)])

    assert messages(await store.query(SPACE, FN, limit=3)) == ["m7", "m8", "m9"]


async def test_since_is_inclusive(store):
    store.append([line(f"m{i}", T0 + i) for i in range(5)])

    assert messages(await store.query(SPACE, FN, since=T0 + 3)) == ["m3", "m4"]


async def test_filter_is_a_case_sensitive_literal_substring(store):
    store.append(
        [line("Saving user"), line("saving user"), line("100% done"), line("a_b"), line("axb")]
    )

    assert messages(await store.query(SPACE, FN, filter="Saving")) == ["Saving user"]
    assert messages(await store.query(SPACE, FN, filter="%")) == ["100% done"]
    assert messages(await store.query(SPACE, FN, filter="_")) == ["a_b"]
    assert len(await store.query(SPACE, FN, filter="")) == 5


async def test_limit_counts_only_matching_lines(store):
    store.append([line(f"{'hit' if i % 2 else 'miss'} {i}", T0 + i) for i in range(10)])

    found = await store.query(SPACE, FN, filter="hit", limit=2, since=T0 + 2)

    assert messages(found) == ["hit 7", "hit 9"]


async def test_functions_and_spaces_are_kept_apart(store):
    store.append([line("a"), line("b", fn="other"), line("c", space="other")])

    assert messages(await store.query(SPACE, FN)) == ["a"]
    assert messages(await store.query(SPACE, "other")) == ["b"]
    assert messages(await store.query("other", FN)) == ["c"]
    assert await store.query("nobody", "nothing") == []


async def test_lines_are_ordered_by_timestamp_then_by_append_order(store):
    store.append([line("late", T0 + 2), line("early", T0), line("tie-1", T0 + 1)])
    store.append([line("tie-2", T0 + 1)])

    assert messages(await store.query(SPACE, FN)) == ["early", "tie-1", "tie-2", "late"]
    assert messages(await store.query(SPACE, FN, limit=2)) == ["tie-2", "late"]


async def test_unicode_and_empty_messages_round_trip(store):
    store.append([line(""), line("naïve ☃ \t tabs"), line("x" * 100_000)])

    assert messages(await store.query(SPACE, FN)) == ["", "naïve ☃ \t tabs", "x" * 100_000]


async def test_a_multi_line_entry_round_trips_and_filters_match_inside_it(store):
    record = "Saving user to CRM:\n{'email': 'test@testcorp.com'}\n\nlast line"
    store.append([line(record), line("other", T0 + 1)])

    assert messages(await store.query(SPACE, FN)) == [record, "other"]
    assert messages(await store.query(SPACE, FN, filter="testcorp")) == [record]
    assert messages(await store.query(SPACE, FN, filter="CRM:\n{")) == [record]


async def test_append_of_nothing_is_fine(store):
    store.append([])

    assert await store.query(SPACE, FN) == []


# -- live tails -----------------------------------------------------------------------------


async def test_a_tail_sees_lines_appended_after_it_opened_only(store):
    store.append([line("before")])
    tail = store.tail(SPACE, FN)
    store.append([line("after-1"), line("elsewhere", fn="other"), line("after-2")])

    assert (await next_line(tail)).message == "after-1"
    assert (await next_line(tail)).message == "after-2"
    assert tail.buffered == 0
    await tail.aclose()


async def test_every_tail_of_a_function_gets_every_line(store):
    first, second = store.tail(SPACE, FN), store.tail(SPACE, FN)
    store.append([line("one")])

    assert (await next_line(first)).message == "one"
    assert (await next_line(second)).message == "one"
    assert store.tail_count(SPACE, FN) == 2
    await first.aclose()
    await second.aclose()


async def test_a_waiting_tail_wakes_when_a_line_arrives(store):
    tail = store.tail(SPACE, FN)
    waiting = asyncio.create_task(next_line(tail))
    await asyncio.sleep(0)  # let it start waiting: the point of this test

    store.append([line("wake up")])

    assert (await waiting).message == "wake up"
    await tail.aclose()


async def test_a_timed_out_wait_loses_no_line(store):
    tail = store.tail(SPACE, FN)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await anext(tail)

    store.append([line("still here")])

    assert (await next_line(tail)).message == "still here"
    await tail.aclose()


async def test_a_slow_tail_catches_up_from_the_store_in_order_once(store):
    tail = store.tail(SPACE, FN)  # the fixture's tails buffer 5 lines
    started = time.perf_counter()
    for i in range(1000):
        store.append([line(f"m{i}", T0 + i)])
    assert time.perf_counter() - started < DEADLINE_S  # appends never waited for the reader
    assert tail.buffered <= 5  # the rest stays in the store until the reader gets there

    got = [(await next_line(tail)).message for _ in range(1000)]
    store.append([line("live again", T0 + 1000)])

    assert got == [f"m{i}" for i in range(1000)]
    assert (await next_line(tail)).message == "live again"
    assert tail.buffered == 0
    await tail.aclose()


async def test_a_tail_that_falls_behind_while_reading_back_rejoins_without_gap_or_repeat(store):
    tail = store.tail(SPACE, FN)
    sent = 0
    got: list[str] = []
    for burst in (12, 3, 40, 7, 1, 25):  # bursts between reads, some over the buffer
        for _ in range(burst):
            store.append([line(f"m{sent}", T0 + sent)])
            sent += 1
        for _ in range(4):
            got.append((await next_line(tail)).message)
    while len(got) < sent:
        got.append((await next_line(tail)).message)

    assert got == [f"m{i}" for i in range(sent)]
    assert tail.buffered == 0
    await tail.aclose()


async def test_a_tail_behind_lines_retention_removed_says_how_many_it_lost(store):
    now = time.time()
    tail = store.tail(SPACE, FN)
    for i in range(100):
        store.append([line(f"m{i}", now + i)])
    await store.enforce_retention(max_age_s=3600, max_lines_per_function=50)

    got = [(await next_line(tail)).message for _ in range(56)]

    assert got[:5] == [f"m{i}" for i in range(5)]  # the tail's own buffer
    assert got[5:55] == [f"m{i}" for i in range(50, 100)]  # what the store still has
    assert got[55] == (
        "[eventgateway] 45 log lines dropped: this tail fell behind, and the log store no "
        "longer had them (retention, or a failed write)"
    )
    await tail.aclose()


async def test_closing_a_tail_unregisters_it(store):
    async with store.tail(SPACE, FN) as tail:
        assert store.tail_count(SPACE, FN) == 1
        assert store.tail_count() == 1

    assert store.tail_count(SPACE, FN) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(tail)


async def test_a_forgotten_tail_is_not_kept_alive_by_the_store(store):
    store.tail(SPACE, FN)  # dropped at once, never closed

    assert store.tail_count(SPACE, FN) == 0


async def test_closing_the_store_ends_tails_after_what_they_hold(tmp_path):
    for store in (MemoryLogStore(), SqliteLogStore(tmp_path / "logs.db")):
        await store.open()
        tail = store.tail(SPACE, FN)
        store.append([line("last words")])
        await store.close()

        assert [item.message async for item in tail] == ["last words"]
        assert [item async for item in store.tail(SPACE, FN)] == []


async def test_appends_after_close_are_dropped_and_counted(tmp_path):
    for store in (MemoryLogStore(), SqliteLogStore(tmp_path / "logs.db")):
        await store.open()
        await store.close()

        store.append([line("too late"), line("also too late")])

        assert store.dropped_lines == 2


# -- retention ------------------------------------------------------------------------------


async def test_retention_deletes_lines_older_than_max_age(store):
    now = time.time()
    store.append([line("old", now - 3600), line("new", now - 10)])
    store.append([line("old elsewhere", now - 7200, fn="other")])

    deleted = await store.enforce_retention(max_age_s=600, max_lines_per_function=100)

    assert deleted == 2
    assert messages(await store.query(SPACE, FN)) == ["new"]
    assert await store.query(SPACE, "other") == []


async def test_retention_keeps_the_newest_lines_of_each_function(store):
    now = time.time()
    store.append([line(f"a{i}", now + i) for i in range(5)])
    store.append([line(f"b{i}", now + i, fn="other") for i in range(2)])
    store.append([line("tie-1", now + 9), line("tie-2", now + 9)])

    deleted = await store.enforce_retention(max_age_s=3600, max_lines_per_function=2)

    assert deleted == 5
    assert messages(await store.query(SPACE, FN)) == ["tie-1", "tie-2"]
    assert messages(await store.query(SPACE, "other")) == ["b0", "b1"]


async def test_retention_to_zero_lines_empties_the_store(store):
    store.append([line("a", time.time())])

    assert await store.enforce_retention(max_age_s=3600, max_lines_per_function=0) == 1
    assert await store.query(SPACE, FN) == []
    assert await store.enforce_retention(max_age_s=3600, max_lines_per_function=0) == 0


async def test_retention_refuses_a_negative_line_count(store):
    with pytest.raises(ValueError, match="must not be negative"):
        await store.enforce_retention(max_age_s=1, max_lines_per_function=-1)


# -- memory only ----------------------------------------------------------------------------


async def test_the_memory_store_keeps_a_bounded_number_of_lines_per_function():
    store = MemoryLogStore(max_lines_per_function=8)
    for i in range(100):
        store.append([line(f"m{i}", T0 + i)])

    assert messages(await store.query(SPACE, FN, limit=100)) == [f"m{i}" for i in range(92, 100)]
    assert len(store._lines[(SPACE, FN)]) <= 9  # trimmed in slices, never far over


def test_the_memory_store_refuses_a_bound_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        MemoryLogStore(max_lines_per_function=0)


# -- SQLite only ----------------------------------------------------------------------------


async def open_sqlite(path: pathlib.Path, **options) -> SqliteLogStore:
    store = SqliteLogStore(path, **options)
    await store.open()
    return store


async def test_sqlite_lines_survive_a_reopen_in_wal_mode(tmp_path):
    path = tmp_path / "data" / "logs.db"
    store = await open_sqlite(path)
    store.append([line("kept", T0)])
    await store.close()

    store = await open_sqlite(path)
    try:
        assert messages(await store.query(SPACE, FN)) == ["kept"]
        assert store.committed_lines == 0  # nothing new was written by this instance
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_sqlite_flush_commits_what_was_appended(tmp_path):
    store = await open_sqlite(tmp_path / "logs.db")
    try:
        store.append([line(f"m{i}") for i in range(100)])
        await store.flush()
        assert store.committed_lines == 100
    finally:
        await store.close()


async def test_sqlite_drops_what_does_not_fit_in_the_buffer_and_stores_a_notice(tmp_path, caplog):
    # Appends before open() stand for a disk that cannot keep up: nothing commits yet.
    store = SqliteLogStore(tmp_path / "logs.db", max_buffered_lines=10)
    for i in range(25):
        store.append([line(f"m{i}", T0 + i)])
    assert store.dropped_lines == 15
    await store.open()
    try:
        found = await store.query(SPACE, FN, limit=100)
    finally:
        await store.close()

    assert messages(found[:10]) == [f"m{i}" for i in range(10)]
    assert found[10].stream == "system"
    assert found[10].message == (
        "[eventgateway] 15 log lines dropped: the log store could not keep up "
        "(the function printed faster than disk writes)"
    )
    assert "Dropped 15 log lines of function 'addUserToCRM'" in caplog.text


async def test_sqlite_tails_see_what_the_store_keeps_and_the_notice_of_what_it_dropped(
    tmp_path,
):
    store = SqliteLogStore(tmp_path / "logs.db", max_buffered_lines=10, tail_buffer_lines=5)
    tail = store.tail(SPACE, FN)
    now = time.time()  # the notice is stamped when written; queries sort by time
    for i in range(25):  # before open(): a disk that cannot keep up
        store.append([line(f"m{i}", now - 25 + i)])
    await store.open()
    try:
        got = [(await next_line(tail)).message for _ in range(11)]
        store.append([line("after", time.time())])
        after = (await next_line(tail)).message
        stored = messages(await store.query(SPACE, FN, limit=100))
    finally:
        await store.close()

    assert got[:10] == [f"m{i}" for i in range(10)]
    assert got[10].startswith("[eventgateway] 15 log lines dropped: the log store could not")
    assert after == "after"
    assert stored == [*got, "after"]


async def test_sqlite_a_tail_of_a_reopened_file_reads_back_only_its_own_lines(tmp_path):
    path = tmp_path / "logs.db"
    first = await open_sqlite(path)
    first.append([line(f"old{i}", T0 + i) for i in range(50)])
    await first.close()
    store = await open_sqlite(path, tail_buffer_lines=5)
    try:
        tail = store.tail(SPACE, FN)
        for i in range(20):
            store.append([line(f"new{i}", T0 + 100 + i)])
        got = [(await next_line(tail)).message for _ in range(20)]
    finally:
        await store.close()

    assert got == [f"new{i}" for i in range(20)]


async def test_sqlite_buffer_is_bounded_in_bytes_too(tmp_path):
    store = SqliteLogStore(tmp_path / "logs.db", max_buffered_bytes=10_000)
    store.append([line("x" * 4000), line("y" * 4000), line("z" * 4000)])

    assert store.dropped_lines == 1  # 3 x (4000 + overhead) does not fit; 2 do
    await store.open()
    await store.close()


async def test_sqlite_reports_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "logs.db"
    path.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match=r"function log store .*logs\.db failed to open") as info:
        await open_sqlite(path)
    assert isinstance(info.value.__cause__, sqlite3.Error)


async def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "logs.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")

    with pytest.raises(StoreError, match="schema version 99"):
        await open_sqlite(path)


async def test_sqlite_query_on_a_closed_or_unopened_store_is_a_store_error(tmp_path):
    unopened = SqliteLogStore(tmp_path / "a.db")
    with pytest.raises(StoreError, match="is not open"):
        await unopened.query(SPACE, FN)

    store = await open_sqlite(tmp_path / "b.db")
    await store.close()
    with pytest.raises(StoreError, match="is closed"):
        await store.query(SPACE, FN)


async def test_sqlite_translates_a_failing_query(tmp_path):
    store = await open_sqlite(tmp_path / "logs.db")
    try:
        with sqlite3.connect(tmp_path / "logs.db") as conn:
            conn.execute("DROP TABLE logs")
        with pytest.raises(StoreError, match="failed to run: no such table") as info:
            await store.query(SPACE, FN)
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        await store.close()


async def test_sqlite_counts_lines_lost_to_a_failed_commit(tmp_path, caplog):
    store = await open_sqlite(tmp_path / "logs.db")
    try:
        with sqlite3.connect(tmp_path / "logs.db") as conn:
            conn.execute("DROP TABLE logs")
        store.append([line("lost"), line("lost too")])
        await store.flush()
        assert store.failed_lines == 2
        assert "Lost 2 function log lines" in caplog.text
    finally:
        await store.close()


async def test_sqlite_query_sees_a_concurrent_burst_in_order(tmp_path):
    store = await open_sqlite(tmp_path / "logs.db")

    async def produce(start: int) -> None:
        for i in range(start, start + 500):
            store.append([line(f"m{i:05d}", T0 + i)])
            if i % 50 == 0:
                await asyncio.sleep(0)  # yield to the other producer

    try:
        await asyncio.gather(produce(0), produce(500))
        found = await store.query(SPACE, FN, limit=10_000)
    finally:
        await store.close()
    assert messages(found) == [f"m{i:05d}" for i in range(1000)]


async def test_sqlite_a_crashed_writer_fails_callers_instead_of_leaving_them_waiting(
    tmp_path, monkeypatch, caplog
):
    store = await open_sqlite(tmp_path / "logs.db")

    def broken(self, conn, lines):
        raise RuntimeError("a bug")

    monkeypatch.setattr(LogWriter, "_commit", broken)
    store.append([line("x")])
    try:
        with pytest.raises(StoreError, match="stopped: RuntimeError"):
            await store.flush()
        with pytest.raises(StoreError, match="is closed"):
            await store.query(SPACE, FN)
        assert "The function log writer of" in caplog.text
    finally:
        await store.close()


async def test_sqlite_close_twice_is_fine(tmp_path):
    store = await open_sqlite(tmp_path / "logs.db")
    await store.close()
    await store.close()
