"""GroupCommitWriter: volatile ops (leases) go first, in a transaction without a sync."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Callable

from eventgateway.queue.sqlite_writer import GroupCommitWriter, Tx

FULL, OFF = 2, 0  # PRAGMA synchronous values
AUTO, NEVER = 1000, 0  # PRAGMA wal_autocheckpoint values (pages)


async def test_volatile_ops_commit_first_without_a_sync_or_checkpoint_and_the_mode_comes_back(
    tmp_path: pathlib.Path,
) -> None:
    writer = GroupCommitWriter(tmp_path / "q.db", "FULL", on_wake=lambda: None)
    await writer.start()
    seen: list[tuple[str, int, int]] = []
    gate, running = threading.Event(), threading.Event()

    def note(name: str) -> Callable[[Tx], str]:
        def op(tx: Tx) -> str:
            if name == "first":
                running.set()
                gate.wait(5)  # hold the writer so the next three arrive as one batch
            (mode,) = tx.conn.execute("PRAGMA synchronous").fetchone()
            (checkpoint,) = tx.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
            seen.append((name, mode, checkpoint))
            return name

        return op

    try:
        first = writer.submit(note("first"))
        assert await asyncio.to_thread(running.wait, 5)
        batch = [
            writer.submit(note("durable-1")),
            writer.submit(note("lease"), volatile=True),
            writer.submit(note("durable-2")),
        ]
        gate.set()
        assert await first == "first"
        assert await asyncio.gather(*batch) == ["durable-1", "lease", "durable-2"]
        assert await writer.submit(note("after")) == "after"
    finally:
        gate.set()
        await writer.stop()

    # A commit without a sync never checkpoints: a checkpoint without syncs could let the
    # WAL be overwritten before the database file has the pages (power loss: data gone).
    assert seen == [
        ("first", FULL, AUTO),
        ("lease", OFF, NEVER),
        ("durable-1", FULL, AUTO),
        ("durable-2", FULL, AUTO),
        ("after", FULL, AUTO),
    ]


async def test_a_writer_that_only_commits_without_syncs_still_checkpoints_with_syncs(
    tmp_path: pathlib.Path,
) -> None:
    # --dispatch worker: the worker's writer only leases and settles (no synced commit of
    # its own). Its WAL must not grow without bound while no accept comes to checkpoint.
    path = tmp_path / "q.db"
    writer = GroupCommitWriter(path, "FULL", on_wake=lambda: None)
    await writer.start()

    def write(tx: Tx) -> None:
        tx.conn.execute("CREATE TABLE IF NOT EXISTS scratch (b BLOB)")
        tx.conn.execute("INSERT INTO scratch VALUES (randomblob(8192))")  # 3 pages at least

    try:
        for _ in range(600):
            await writer.submit(write, volatile=True)  # one commit each
        wal_bytes = (tmp_path / "q.db-wal").stat().st_size  # before closing checkpoints
    finally:
        await writer.stop()

    # Unchecked, 600 commits of 3+ pages each make a WAL over 7 MB; checkpointed every
    # 100 commits, the WAL starts over and stays near 100 commits' worth.
    assert wal_bytes < 3 * 1024 * 1024, wal_bytes
