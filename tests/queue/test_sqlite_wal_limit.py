"""The SQLite queue's WAL is cut back after a burst (QA: it stayed at its peak for good,
and took back at once the room freed on a full disk)."""

from __future__ import annotations

import pathlib

from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.queue.sqlite_schema import WAL_SIZE_LIMIT_BYTES
from tests.queue.kit import accepted

BODY = "x" * 20_000


async def test_the_wal_shrinks_to_its_limit_once_checkpointed(tmp_path: pathlib.Path) -> None:
    queue = SqliteQueue(tmp_path / "queue.db")
    await queue.open()
    wal = tmp_path / "queue.db-wal"
    try:
        for batch in range(25):  # ~25 MB in 25 commits: the WAL grows past the limit
            items = [accepted(f"big-{batch}-{n}", "s1") for n in range(50)]
            for item in items:
                item.event.data = {"body": BODY}
            await queue.accept(items)
        peak = wal.stat().st_size
        # Small commits: checkpoints run every 100 commits, and the write after a
        # complete one starts the WAL over, cut to the limit.
        for n in range(300):
            await queue.accept([accepted(f"small-{n}", "s1")])
        after = wal.stat().st_size
    finally:
        await queue.close()

    assert peak > WAL_SIZE_LIMIT_BYTES
    assert after <= WAL_SIZE_LIMIT_BYTES
