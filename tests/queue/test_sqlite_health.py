"""What the SQLite queue reports of its file: damaged, so not ready (QA: with page 2 of
queue.db overwritten the gateway started, said ready, and answered every event 503 for
good); and the backlog as the file counts it, whoever settled."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

from eventgateway.errors import StoreDamagedError
from eventgateway.queue.sqlite import SqliteQueue
from tests.queue.kit import attempt, put

PAGE_BYTES = 4096


async def test_a_write_to_a_damaged_file_makes_the_queue_unhealthy(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "queue.db"
    queue = SqliteQueue(path)
    await queue.open()
    for n in range(500):
        await put(queue, f"e{n}", "s1")
    await queue.close()
    with sqlite3.connect(path) as conn:  # de-duplication's index: every accept reads it
        ((root,),) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'events_by_id'"
        ).fetchall()
    conn.close()
    with path.open("r+b") as file:
        file.seek((root - 1) * PAGE_BYTES)
        file.write(b"\xff" * PAGE_BYTES)

    queue = SqliteQueue(path)
    await queue.open()
    try:
        assert queue.health() is None
        with pytest.raises(StoreDamagedError):
            await put(queue, "new", "s1")
        reason = queue.health()
    finally:
        await queue.close()

    assert reason is not None
    assert reason.startswith("the delivery queue's file queue.db is damaged (database disk ")
    assert str(tmp_path) not in reason  # readiness is public: no server paths


async def test_refresh_counters_sees_what_another_process_settled(
    tmp_path: pathlib.Path,
) -> None:
    # QA: with the delivery worker settling in its own process, the HTTP process's
    # backlog gauge showed 200 for good after all 200 were delivered.
    path = tmp_path / "queue.db"
    ingest, worker = SqliteQueue(path), SqliteQueue(path)
    await ingest.open()
    await worker.open()
    try:
        for n in range(5):
            await put(ingest, f"e{n}", "s1")
        for delivery in await worker.lease(10):
            await worker.ack(delivery, attempt())
        stale = ingest.backlog()

        await ingest.refresh_counters()

        assert (stale, ingest.backlog(), worker.backlog()) == (5, 0, 0)
    finally:
        await worker.close()
        await ingest.close()
