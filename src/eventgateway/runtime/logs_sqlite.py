"""``SqliteLogStore``: function logs in ``<data-dir>/logs.db`` (WAL), apart from the queue.

A file of its own because log lines are many, small and expendable: their writes must not
compete with the delivery queue's commits for one write lock, and deleting the file loses
nothing but logs. ``append`` hands lines to the writer thread of ``runtime/logs_writer.py``
(bounded buffer, group commit; see there for what is dropped when the disk cannot keep up),
which hands what it takes to the live tails with each line's position; queries, retention
and the reads of tails that fell behind (by ``seq``) run on that thread too.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from eventgateway.runtime.base import LogLine, LogStore, Stream
from eventgateway.runtime.logs_tail import (
    DEFAULT_TAIL_BUFFER_LINES,
    LogTail,
    Positioned,
    TailHub,
)
from eventgateway.runtime.logs_writer import LogWriter

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_BUFFERED_LINES",
    "SqliteLogStore",
]

DEFAULT_MAX_BUFFERED_LINES: Final = 200_000
DEFAULT_MAX_BUFFERED_BYTES: Final = 64 * 1024 * 1024


class SqliteLogStore(LogStore):
    """Function logs in a SQLite file, with live tails fed in-process.

    Args:
        path: the database, usually ``<data-dir>/logs.db``; created if missing.
        max_buffered_lines: lines waiting for a commit at most; beyond, new lines are
            dropped and a ``system`` line stored in their place says how many.
        max_buffered_bytes: the same bound in (estimated) bytes of memory.
        tail_buffer_lines: each live tail's queue.
        synchronous: ``PRAGMA synchronous`` of the file.

    ``append`` belongs to the event loop's thread (as the runtime's pipe readers are); it
    may be called before :meth:`open`, and the lines wait in the buffer.

    Raises (from :meth:`open`, :meth:`query`, :meth:`enforce_retention`):
        StoreError: the file cannot be opened, read or written, or the store is closed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        path: Path,
        *,
        max_buffered_lines: int = DEFAULT_MAX_BUFFERED_LINES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        tail_buffer_lines: int = DEFAULT_TAIL_BUFFER_LINES,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = path
        self._tails = TailHub(self.read_from, tail_buffer_lines)
        self._writer = LogWriter(
            path,
            max_buffered_lines=max_buffered_lines,
            max_buffered_bytes=max_buffered_bytes,
            synchronous=synchronous,
            on_taken=self._tails.publish,
        )

    async def open(self) -> None:
        """Open or create the file and start the writer thread."""
        await self._writer.start()

    def end_tails(self) -> None:
        self._tails.close()

    def end_space_tails(self, space: str) -> None:
        self._tails.end_space(space)

    async def close(self) -> None:
        """End running tails, commit what is buffered, and stop the writer thread."""
        self._tails.close()
        await self._writer.stop()

    def append(self, lines: Sequence[LogLine]) -> None:
        """Buffer ``lines`` for the writer and feed live tails; never blocks."""
        self._writer.offer(lines)  # what it takes goes to the tails too

    async def flush(self) -> None:
        """Wait until every line appended before this call is committed (or lost)."""
        await self._writer.submit(_nothing)

    async def query(
        self,
        space: str,
        function_id: str,
        *,
        since: float | None = None,
        limit: int = 1000,
        filter: str | None = None,
    ) -> list[LogLine]:
        """The newest ``limit`` lines matching ``since`` and ``filter``, oldest first."""
        if limit < 1:
            return []
        op = functools.partial(_select, space, function_id, since, limit, filter or None)
        return await self._writer.submit(op)

    async def read_from(
        self, space: str, function_id: str, position: int, limit: int
    ) -> list[Positioned]:
        """The lines at ``position`` or after, by position, at most ``limit``.

        Raises:
            StoreError: the file cannot be read, or the store is not open or closed.
        """
        if limit < 1:
            return []
        writer = self._writer
        op = functools.partial(_select_from, writer, space, function_id, position, limit)
        return await writer.submit(op)

    def tail(self, space: str, function_id: str) -> LogTail:
        """Lines appended from now on, until the store closes or the tail is closed."""
        return self._tails.open(space, function_id)

    def tail_count(self, space: str | None = None, function_id: str | None = None) -> int:
        """Open tails, of one function or of all."""
        return self._tails.count(space, function_id)

    async def enforce_retention(self, *, max_age_s: float, max_lines_per_function: int) -> int:
        """Delete lines older than ``max_age_s`` or beyond the newest N per function."""
        if max_lines_per_function < 0:
            raise ValueError(
                f"max_lines_per_function {max_lines_per_function!r} must not be negative"
            )
        op = functools.partial(_retain, time.time() - max_age_s, max_lines_per_function)
        return await self._writer.submit(op)

    async def forget_space(self, space: str) -> None:
        """Delete every line of every function of ``space``, buffered ones included (the
        writer commits them before it runs this)."""
        self.end_space_tails(space)
        await self._writer.submit(functools.partial(_forget, space))

    @property
    def dropped_lines(self) -> int:
        """Lines dropped because the buffer was full or the store closed."""
        return self._writer.dropped_lines

    @property
    def failed_lines(self) -> int:
        """Lines lost because their commit failed (logged as errors)."""
        return self._writer.failed_lines

    @property
    def committed_lines(self) -> int:
        """Lines committed since :meth:`open` (dropped-line notices included)."""
        return self._writer.committed_lines


# -- ops, run on the writer thread --------------------------------------------------------


def _nothing(conn: sqlite3.Connection) -> None:
    del conn


def _select(
    space: str,
    function_id: str,
    since: float | None,
    limit: int,
    filter: str | None,
    conn: sqlite3.Connection,
) -> list[LogLine]:
    sql = "SELECT request_id, ts, stream, message FROM logs WHERE space = ? AND function_id = ?"
    params: list[object] = [space, function_id]
    if since is not None:
        sql += " AND ts >= ?"
        params.append(since)
    if filter is not None:
        sql += " AND instr(message, ?) > 0"  # LIKE would ignore case and treat % and _
        params.append(filter)
    sql += " ORDER BY ts DESC, seq DESC LIMIT ?"
    params.append(limit)
    rows: list[tuple[str, float, Stream, str]] = conn.execute(sql, params).fetchall()
    rows.reverse()
    return [
        LogLine(space, function_id, request_id, ts, stream, message)
        for request_id, ts, stream, message in rows
    ]


def _select_from(
    writer: LogWriter,
    space: str,
    function_id: str,
    position: int,
    limit: int,
    conn: sqlite3.Connection,
) -> list[Positioned]:
    base = writer.base_seq  # read here, on the writer thread that set it
    # NOT INDEXED: walk the rowid from the position on, rather than every line of the
    # function through the (space, function_id, ts) index and then sort them.
    rows: list[tuple[int, str, float, Stream, str]] = conn.execute(
        "SELECT seq, request_id, ts, stream, message FROM logs NOT INDEXED "
        "WHERE seq >= ? AND space = ? AND function_id = ? ORDER BY seq LIMIT ?",
        (base + position, space, function_id, limit),
    ).fetchall()
    return [
        (seq - base, LogLine(space, function_id, request_id, ts, stream, message))
        for seq, request_id, ts, stream, message in rows
    ]


def _retain(cutoff: float, keep: int, conn: sqlite3.Connection) -> int:
    deleted = 0
    conn.execute("BEGIN IMMEDIATE")
    # Per function, so that every statement is a range of the one index.
    functions = conn.execute(
        "SELECT space, function_id, COUNT(*) FROM logs GROUP BY space, function_id"
    ).fetchall()
    for space, function_id, count in functions:
        deleted += conn.execute(
            "DELETE FROM logs WHERE space = ? AND function_id = ? AND ts < ?",
            (space, function_id, cutoff),
        ).rowcount
        if count <= keep:
            continue
        # The newest line beyond the newest `keep`: it and everything before it go.
        bound = conn.execute(
            "SELECT ts, seq FROM logs WHERE space = ? AND function_id = ? "
            "ORDER BY ts DESC, seq DESC LIMIT 1 OFFSET ?",
            (space, function_id, keep),
        ).fetchone()
        if bound is not None:
            ts, seq = bound
            deleted += conn.execute(
                "DELETE FROM logs WHERE space = ? AND function_id = ? "
                "AND (ts < ? OR (ts = ? AND seq <= ?))",
                (space, function_id, ts, ts, seq),
            ).rowcount
    conn.execute("COMMIT")
    return deleted


def _forget(space: str, conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM logs WHERE space = ?", (space,))  # logs_by_function's prefix
    conn.execute("COMMIT")
