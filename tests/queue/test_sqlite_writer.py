"""GroupCommitWriter: volatile ops (leases) go first; durable commits are synced outside the
write lock, before they are answered; checkpoints run with syncs."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pathlib
import threading
from collections.abc import Callable

import pytest

from eventgateway.errors import StoreError
from eventgateway.queue import sqlite_sync
from eventgateway.queue.sqlite_writer import GroupCommitWriter, Tx

OFF = 0  # PRAGMA synchronous
NEVER = 0  # PRAGMA wal_autocheckpoint


def write_row(tx: Tx) -> str:
    tx.conn.execute("CREATE TABLE IF NOT EXISTS scratch (n INTEGER)")
    tx.conn.execute("INSERT INTO scratch VALUES (1)")
    return "committed"


async def test_volatile_ops_commit_first_and_no_commit_syncs_or_checkpoints_by_itself(
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

    # Syncs happen after COMMIT, outside the write lock (WalSync); a checkpoint without
    # syncs inside a commit could let the WAL be overwritten before the file has the pages.
    assert seen == [
        ("first", OFF, NEVER),
        ("lease", OFF, NEVER),
        ("durable-1", OFF, NEVER),
        ("durable-2", OFF, NEVER),
        ("after", OFF, NEVER),
    ]


@pytest.mark.parametrize(("synchronous", "synced"), [("FULL", True), ("NORMAL", False)])
async def test_a_durable_commit_syncs_the_wal_after_the_lock_and_before_its_answer(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, synchronous: str, synced: bool
) -> None:
    path = tmp_path / "q.db"
    events: list[str] = []
    fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        # Another process's writer could take the file's lock now: it is not held.
        with open(f"{path}.lock", "rb") as other:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(other, fcntl.LOCK_UN)
        events.append(f"fsync {pathlib.Path(target).name}")
        fsync(fd)

    monkeypatch.setattr(sqlite_sync.os, "fsync", recording_fsync)
    writer = GroupCommitWriter(path, synchronous, on_wake=lambda: None)
    await writer.start()

    try:
        await writer.submit(write_row, volatile=True)
        events.append("volatile answered")
        await writer.submit(write_row)
        events.append("durable answered")
    finally:
        await writer.stop()

    if synced:
        assert events == ["volatile answered", "fsync q.db-wal", "durable answered"]
    else:  # NORMAL: no sync per commit, as SQLite's own NORMAL
        assert events == ["volatile answered", "durable answered"]


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


async def test_a_failed_sync_fails_the_durable_commit_it_was_for(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sqlite_sync.os, "fsync", failing_fsync)
    writer = GroupCommitWriter(tmp_path / "q.db", "FULL", on_wake=lambda: None)
    await writer.start()

    try:
        assert await writer.submit(write_row, volatile=True) == "committed"  # never synced
        with pytest.raises(StoreError, match=r"cannot sync the SQLite queue .*Input/output"):
            await writer.submit(write_row)  # not "on disk": the caller answers 503, not 202
    finally:
        await writer.stop()


async def test_the_next_transaction_runs_while_a_commit_is_being_synced(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncing, release = threading.Event(), threading.Event()
    fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        syncing.set()
        release.wait(5)  # a slow disk
        fsync(fd)

    monkeypatch.setattr(sqlite_sync.os, "fsync", slow_fsync)
    writer = GroupCommitWriter(tmp_path / "q.db", "FULL", on_wake=lambda: None)
    await writer.start()

    try:
        durable = writer.submit(write_row)
        assert await asyncio.to_thread(syncing.wait, 5)  # committed, now being synced
        # The writer is not waiting for the disk: a lease commits and is answered.
        assert await asyncio.wait_for(writer.submit(write_row, volatile=True), 5) == "committed"
        assert not durable.done()  # not answered before its sync ends
        release.set()
        assert await asyncio.wait_for(durable, 5) == "committed"
    finally:
        release.set()
        await writer.stop()
