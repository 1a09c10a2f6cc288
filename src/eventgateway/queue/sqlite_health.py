"""``SqliteQueue.health()``: not ready once SQLite has found the file damaged.

A damaged ``queue.db`` ("database disk image is malformed") refuses every accept with a
503 that no retry mends, while ``/v1/ready`` said ready, so a load balancer kept sending
it events (QA). Found by the writer when a write fails that way (reads do not look).
"""

from __future__ import annotations

from pathlib import Path

from eventgateway.queue.sqlite_writer import GroupCommitWriter

__all__ = ["SqliteHealthMixin"]


class SqliteHealthMixin:
    """:meth:`health` for the SQLite queue; the queue provides the state."""

    path: Path
    _writer: GroupCommitWriter

    def health(self) -> str | None:
        """``None`` unless the file was found damaged, else why not (``GET /v1/ready``)."""
        damaged = self._writer.damaged
        if damaged is None:
            return None
        return (
            f"the delivery queue's file {self.path.name} is damaged ({damaged}); stop the "
            "gateway and restore it from a backup, or move it aside to start an empty one"
        )
