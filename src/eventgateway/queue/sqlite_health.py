"""``SqliteQueue.health()``: not ready once SQLite has found the file damaged; and
``refresh_counters()``: the backlog as the file counts it now.

A damaged ``queue.db`` ("database disk image is malformed") refuses every accept with a
503 that no retry mends, while ``/v1/ready`` said ready, so a load balancer kept sending
it events (QA). Found by the writer when a write fails that way (reads do not look).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from eventgateway.queue.sqlite_log import Reader
from eventgateway.queue.sqlite_writer import GroupCommitWriter

__all__ = ["SqliteHealthMixin"]


class SqliteHealthMixin:
    """:meth:`health` for the SQLite queue; the queue provides the state."""

    path: Path
    _writer: GroupCommitWriter
    _reader: Reader

    def health(self) -> str | None:
        """``None`` unless the file was found damaged, else why not (``GET /v1/ready``)."""
        damaged = self._writer.damaged
        if damaged is None:
            return None
        return (
            f"the delivery queue's file {self.path.name} is damaged ({damaged}); stop the "
            "gateway and restore it from a backup, or move it aside to start an empty one"
        )

    async def refresh_counters(self) -> None:
        """Re-read the shared ``counters`` row: the delivery worker settles in its own
        process, and this one's copy moved only with its own commits (QA: the backlog
        gauge showed 200 for good after all 200 were delivered)."""
        backlog, stored = await self._reader.run(_counters)
        writer = self._writer
        writer.backlog, writer.bytes = backlog, stored


def _counters(conn: sqlite3.Connection) -> tuple[int, int]:
    backlog, stored = conn.execute("SELECT backlog, bytes FROM counters WHERE id = 1").fetchone()
    return int(backlog), int(stored)
