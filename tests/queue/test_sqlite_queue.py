"""What only the SQLite queue does: durability across reopen and SIGKILL, group commit,
schema versioning, error translation, and sharing one file between processes."""

from __future__ import annotations

import asyncio
import collections
import os
import pathlib
import signal
import sqlite3
import sys
import time

import pytest

from eventgateway.errors import ConfigError, StoreError
from eventgateway.queue.base import Delivery
from eventgateway.queue.replay import ReplayTarget
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.queue.sqlite_admin import retention_op
from eventgateway.queue.sqlite_schema import SCHEMA_VERSION
from tests.queue.kit import DEADLINE_S, T0, FakeClock, OpenSqlite, accepted, attempt, ids, put

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def lease(queue: SqliteQueue, max_count: int = 100) -> list[Delivery]:
    return await asyncio.wait_for(queue.lease(max_count), DEADLINE_S)


async def test_everything_survives_a_reopen(open_queue: OpenSqlite, clock: FakeClock) -> None:
    queue = await open_queue()
    await put(queue, "e1", "s1", "s2")
    await put(queue, "e2", "s1")
    delivered, dead, failing = await lease(queue)
    await queue.ack(delivered, attempt())
    await queue.dead_letter(dead, "gave up", attempt("failed", 410))
    await queue.retry_later(failing, 10.0, attempt("failed", 503))
    await queue.close()

    queue = await open_queue()

    view = await queue.get_event("acme", "e1")
    assert view is not None
    assert [(d.state, len(d.attempt_log)) for d in view.deliveries] == [
        ("delivered", 1),
        ("dead", 1),
    ]
    assert [d.reason for d in await queue.list_dead_letters("acme")] == ["gave up"]
    assert queue.stats()["backlog"] == 1
    assert await put(queue, "e1", "s1") is True  # de-duplication remembers too
    clock.advance(10.0)
    (again,) = await lease(queue)
    assert (again.event.id, again.attempt) == ("e2", 1)


async def test_expired_leases_come_back_after_a_reopen(
    open_queue: OpenSqlite, clock: FakeClock
) -> None:
    queue = await open_queue(lease_s=30.0)
    await put(queue, "e1", "s1")
    (first,) = await lease(queue)
    await queue.close()  # as if the process died mid-attempt

    queue = await open_queue(lease_s=30.0)
    await put(queue, "e2", "s1")
    (second,) = await lease(queue)  # e1's lease still holds
    assert second.event.id == "e2"
    await queue.ack(second, attempt())

    clock.advance(30.0)
    queue.notify()
    (again,) = await lease(queue)
    assert (again.id, again.attempt) == (first.id, 0)


async def test_leases_of_a_dead_holder_are_handed_back_at_once(
    open_queue: OpenSqlite, clock: FakeClock
) -> None:
    queue = await open_queue(lease_s=30.0)
    for event_id in ("e1", "e2", "e3"):
        await put(queue, event_id, "s1")
    leased = await lease(queue, 2)
    retrying = await lease(queue, 1)
    await queue.retry_later(retrying[0], 10.0, attempt("failed", 500))
    await queue.close()  # the dispatcher died holding two leases

    queue = await open_queue(lease_s=30.0)
    assert await queue.release_leases() == 2  # not the retry, which is not due yet
    again = await lease(queue)  # no clock moved: handed back, not expired
    assert sorted(d.id for d in again) == sorted(d.id for d in leased)
    assert all(d.attempt == 0 for d in again)
    assert await queue.release_leases() == 2  # the ones just leased, again
    clock.advance(10.0)
    queue.notify()
    assert {d.id for d in await lease(queue)} == {d.id for d in leased} | {retrying[0].id}


async def test_sigkill_loses_no_accepted_event(path: pathlib.Path, open_queue: OpenSqlite) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.queue.accept_child",
        str(path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    promised: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(promised) < 400:  # mid-stream: 16 accepts are in flight
                promised.append((await child.stdout.readline()).decode().strip())
    finally:
        os.kill(child.pid, signal.SIGKILL)
    rest = (await child.stdout.read()).decode()
    await child.wait()
    promised += rest.split("\n")[:-1]  # a last line without its newline promised nothing

    queue = await open_queue(clock=time.time)  # the child accepted on the real clock
    per_event = collections.Counter(d.event.id for d in await lease(queue, 1_000_000))

    assert child.returncode == -signal.SIGKILL
    missing = [event_id for event_id in promised if per_event[event_id] != 2]
    assert missing == []
    assert queue.stats()["backlog"] == 2 * len(per_event)


async def test_group_commit_batches_concurrent_work(open_queue: OpenSqlite) -> None:
    queue = await open_queue()

    await asyncio.gather(*(put(queue, f"e{n}", "s1") for n in range(400)))
    accepted_stats = queue.stats()
    leased = await lease(queue, 400)
    await asyncio.gather(*(queue.ack(d, attempt()) for d in leased))
    final = queue.stats()

    assert accepted_stats["items"] == 400
    assert accepted_stats["transactions"] < 200  # typically a handful
    acks = final["transactions"] - accepted_stats["transactions"] - 1  # minus the lease
    assert acks < 200
    assert (final["backlog"], final["bytes"]) == (0, 0)


async def test_a_failing_item_fails_only_its_caller(
    path: pathlib.Path, open_queue: OpenSqlite
) -> None:
    queue = await open_queue()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event_id = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        )
    conn.close()

    results = await asyncio.gather(
        *(put(queue, f"e{n}", "s1") for n in range(20)),
        put(queue, "bad", "s1"),
        *(put(queue, f"f{n}", "s1") for n in range(20)),
        return_exceptions=True,
    )

    assert results[:20] == [False] * 20
    assert results[21:] == [False] * 20
    error = results[20]
    assert isinstance(error, StoreError)
    assert isinstance(error.__cause__, sqlite3.Error)
    assert "refused by test" in str(error)
    assert queue.backlog() == 40


async def test_two_queues_share_one_file(open_queue: OpenSqlite) -> None:
    ingest = await open_queue(max_deliveries=1)
    dispatch = await open_queue()
    waiting = asyncio.create_task(dispatch.lease(10))
    await asyncio.sleep(0)

    await put(ingest, "e1", "s1")
    dispatch.notify()  # what the other process's signal does
    (delivery,) = await asyncio.wait_for(waiting, DEADLINE_S)
    await dispatch.ack(delivery, attempt())

    # The bound is checked against the file's counters: what the other process settled
    # counts at once.
    assert await put(ingest, "e2", "s1") is False


async def test_an_unreadable_stored_event_is_dead_lettered_not_stuck(
    path: pathlib.Path, open_queue: OpenSqlite
) -> None:
    queue = await open_queue()
    await put(queue, "broken", "s1")
    await put(queue, "fine", "s1")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET body = x'00' WHERE event_id = 'broken'")
    conn.close()

    assert ids(await lease(queue)) == [("fine", "s1")]
    (letter,) = await queue.list_dead_letters("acme")
    assert letter.reason.startswith("stored event cannot be decoded")
    assert queue.backlog() == 1


async def test_counters_are_recounted_at_open(path: pathlib.Path, open_queue: OpenSqlite) -> None:
    queue = await open_queue()
    await queue.accept([accepted("e1", "s1", "s2")])
    await queue.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE counters SET backlog = 999, bytes = 0")
    conn.close()

    queue = await open_queue()

    assert queue.stats()["backlog"] == 2
    assert queue.stats()["bytes"] > 0


async def test_file_is_wal_with_the_current_schema_version(
    path: pathlib.Path, open_queue: OpenSqlite
) -> None:
    await (await open_queue()).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_a_version_1_file_gains_the_per_subscription_index_and_keeps_its_rows(
    path: pathlib.Path, open_queue: OpenSqlite
) -> None:
    queue = await open_queue()
    await put(queue, "e1", "s1")
    await queue.close()
    with sqlite3.connect(path) as conn:  # as the first release left it
        conn.execute("DROP INDEX deliveries_sub_due")
        conn.execute("ALTER TABLE counters DROP COLUMN dead")
        drop_replay_columns(conn)
        conn.execute("PRAGMA user_version = 1")
    conn.close()

    queue = await open_queue()

    assert ids(await lease(queue)) == [("e1", "s1")]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        index = "SELECT 1 FROM sqlite_master WHERE name = 'deliveries_sub_due'"
        assert conn.execute(index).fetchone() == (1,)
    conn.close()


@pytest.mark.parametrize("left_as", ["version 2", "edited by hand"])
async def test_dead_letters_kept_before_the_count_existed_count_towards_the_bound(
    path: pathlib.Path, open_queue: OpenSqlite, left_as: str
) -> None:
    queue = await open_queue()
    await put(queue, "e1", "s1")
    await put(queue, "e2", "s1")
    a, b = await lease(queue)
    await queue.dead_letter(a, "gave up", None)
    await queue.close()
    with sqlite3.connect(path) as conn:
        if left_as == "version 2":
            conn.execute("ALTER TABLE counters DROP COLUMN dead")
            drop_replay_columns(conn)
            conn.execute("PRAGMA user_version = 2")
        else:
            conn.execute("UPDATE counters SET dead = 0")
    conn.close()

    queue = await open_queue(max_dead_letters=1)

    with pytest.raises(StoreError, match="1 dead letters are kept already"):
        await queue.dead_letter(b, "gave up", None)


def drop_replay_columns(conn: sqlite3.Connection) -> None:
    """Undo schema version 4 (replay), as a file of an earlier release lacks it."""
    conn.execute("ALTER TABLE deliveries DROP COLUMN replay_of")
    conn.execute("ALTER TABLE deliveries DROP COLUMN accepted_at")


async def test_a_version_3_file_gains_the_replay_columns_and_its_events_replay(
    path: pathlib.Path, open_queue: OpenSqlite
) -> None:
    queue = await open_queue()
    await put(queue, "e1", "s1")
    (first,) = await lease(queue)
    await queue.ack(first, attempt())
    await queue.close()
    with sqlite3.connect(path) as conn:  # as the release before replay left it
        drop_replay_columns(conn)
        conn.execute("PRAGMA user_version = 3")
    conn.close()

    queue = await open_queue()
    target = ReplayTarget("fn-s1")
    result = await queue.replay("acme", ids=["e1"], subscriptions=lambda _: target)

    assert result.replayed == 1
    (again,) = await lease(queue)
    assert (again.event.id, again.accepted_at) == ("e1", T0)
    view = await queue.get_event("acme", "e1")
    assert view is not None
    assert [d.replay_of for d in view.deliveries] == [None, first.id]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_a_newer_schema_is_refused(path: pathlib.Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(StoreError, match="newer than this eventgateway understands"):
        await SqliteQueue(path).open()


async def test_a_file_that_is_not_a_database_is_a_store_error(path: pathlib.Path) -> None:
    await asyncio.to_thread(path.write_bytes, b"not a database, just text " * 100)

    with pytest.raises(StoreError) as raised:
        await SqliteQueue(path).open()
    assert isinstance(raised.value.__cause__, sqlite3.Error)


async def test_use_before_open_is_a_store_error(path: pathlib.Path) -> None:
    with pytest.raises(StoreError, match="not open"):
        await put(SqliteQueue(path), "e1", "s1")


def test_an_unknown_synchronous_mode_is_a_config_error(path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="'SOMETIMES'"):
        SqliteQueue(path, synchronous="SOMETIMES")


async def test_ids_are_never_reused_after_a_purge(open_queue: OpenSqlite) -> None:
    queue = await open_queue()
    await put(queue, "e1", "s1")
    (first,) = await lease(queue)
    await queue.dead_letter(first, "gave up", None)
    await queue.purge("acme")

    await put(queue, "e2", "s1")
    (second,) = await lease(queue)
    (summary,) = await queue.list_events("acme")

    assert int(second.id) > int(first.id)
    assert summary.seq == 2


async def test_a_database_locked_by_another_process_is_a_store_error(
    path: pathlib.Path, open_queue: OpenSqlite
) -> None:
    queue = await open_queue(busy_timeout_s=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
    try:
        results = await asyncio.gather(
            *(put(queue, f"e{n}", "s1") for n in range(1, 5)), return_exceptions=True
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert all(isinstance(r, StoreError) for r in results)
    assert "locked" in str(results[0])
    assert await put(queue, "e9", "s1") is False


async def test_retention_walks_the_dead_letters_it_keeps_off_the_writer(
    open_queue: OpenSqlite, clock: FakeClock
) -> None:
    # Measured at the dead-letter cap: each pass walked every kept dead letter in writer
    # transactions of 500 events (~3.3 s of the file's one write lock a minute).
    queue = await open_queue()
    await queue.accept([accepted(f"dead{n}", "s1") for n in range(1200)])
    doomed = await lease(queue, 1200)
    await asyncio.gather(*(queue.dead_letter(d, "gave up", None) for d in doomed))
    await put(queue, "old", "s1")
    (delivered,) = await lease(queue)
    await queue.ack(delivered, attempt())
    clock.advance(3600.0)
    before = queue.stats()["transactions"]

    assert await queue.enforce_retention(max_age_s=60.0, max_events=1_000_000) == 1
    assert queue.stats()["transactions"] - before == 1  # the one delete, nothing else
    assert await queue.enforce_retention(max_age_s=60.0, max_events=1_000_000) == 0
    assert queue.stats()["transactions"] - before == 1
    assert len(await queue.list_dead_letters("acme", limit=2000)) == 1200


async def test_retention_leaves_an_event_that_changed_since_the_reader_looked(
    open_queue: OpenSqlite,
) -> None:
    queue = await open_queue()
    await put(queue, "e1", "s1")
    (delivery,) = await lease(queue)
    await queue.ack(delivery, attempt())
    seq = (await queue.list_events("acme"))[0].seq
    # As if another process settled a second delivery of it after the reader's snapshot.
    await queue._writing().submit(
        lambda tx: tx.conn.execute(
            "INSERT INTO deliveries (event_seq, space, subscription_id, function_id, "
            "updated_at) VALUES (?, 'acme', 's2', 'fn-s2', 0)",
            (seq,),
        )
    )

    assert await queue._writing().submit(retention_op([seq], seq + 1, 0.0)) == 0
    assert await queue.get_event("acme", "e1") is not None
