"""The :class:`DeliveryLog` side of :class:`~eventgateway.queue.sqlite.SqliteQueue`.

Reads run on a thread of their own with a separate read-only connection: in WAL mode
they see a consistent snapshot and never wait for the writer, nor make it wait. Redrive,
purge and retention are writes and go through the group-commit writer like everything
else.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from eventgateway.errors import StoreError
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.log_views import (
    DeadLetter,
    EventSummary,
    EventView,
    LoggedAttempt,
    aggregate_state,
    dead_letter_view,
    delivery_view,
    rfc3339,
)
from eventgateway.queue.selection import Selection
from eventgateway.queue.sqlite_admin import (
    dead_filter,
    purge_op,
    redrive_op,
    retention_candidates,
    retention_end,
    retention_op,
)
from eventgateway.queue.sqlite_schema import connect
from eventgateway.queue.sqlite_writer import GroupCommitWriter

__all__ = ["Reader", "SqliteLogMixin"]

_T = TypeVar("_T")
_STATE_BY_RANK: Final = ("delivered", "pending", "retrying", "dead")
_RANK_OF: Final = {state: rank for rank, state in enumerate(_STATE_BY_RANK)}
_RETENTION_BATCH: Final = 500


class Reader:
    """One read-only connection on one thread; each call reads one snapshot."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Start the thread and open the connection on it."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"queue-reader:{self._path.name}")
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(
            self._executor, lambda: connect(self._path, self._synchronous, readonly=True)
        )

    async def run(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``query`` in a read transaction on the reader thread.

        Raises:
            StoreError: SQLite failed, or the reader is closed.
        """
        if self._executor is None or self._conn is None:
            raise StoreError(f"the SQLite queue {self._path} is not open")
        conn = self._conn

        def call() -> _T:
            try:
                conn.execute("BEGIN")
                try:
                    return query(conn)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the SQLite queue {self._path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        executor, conn = self._executor, self._conn
        self._executor = self._conn = None
        if executor is None:
            return
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=False)


class SqliteLogMixin(DeliveryLog):
    """Delivery-log queries over the queue's tables; ``SqliteQueue`` provides the plumbing."""

    _clock: Callable[[], float]
    _reader: Reader

    @abc.abstractmethod
    def _writing(self) -> GroupCommitWriter:
        """The writer, or :class:`StoreError` if the queue is not open."""

    async def get_event(self, space: str, event_id: str) -> EventView | None:
        """See :meth:`DeliveryLog.get_event`."""
        now = self._clock()

        def query(conn: sqlite3.Connection) -> EventView | None:
            events = conn.execute(
                "SELECT seq, source, type, specversion, body, received_at FROM events "
                "WHERE event_id = ? ORDER BY seq DESC",
                (event_id,),
            ).fetchall()
            for seq, source, type_, specversion, body, received_at in events:
                rows = conn.execute(
                    "SELECT id, subscription_id, function_id, state, attempts, due_at, "
                    "lease_until, last_status, last_error, dead_reason, replay_of FROM deliveries "
                    "WHERE space = ? AND event_seq = ? ORDER BY id",
                    (space, seq),
                ).fetchall()
                if not rows:
                    continue
                logs = _attempt_logs(conn, [row[0] for row in rows])
                deliveries = [
                    delivery_view(
                        delivery_id=row[0],
                        subscription_id=row[1],
                        function_id=row[2],
                        state=row[3],
                        attempts=row[4],
                        due_at=row[5],
                        lease_until=row[6],
                        now=now,
                        last_status=row[7],
                        last_error=row[8],
                        dead_reason=row[9],
                        log=logs.get(row[0], ()),
                        replay_of=row[10],
                    )
                    for row in rows
                ]
                return EventView(
                    id=event_id,
                    source=source,
                    type=type_,
                    specversion=specversion,
                    received_at=rfc3339(received_at),
                    state=aggregate_state(d.state for d in deliveries),
                    event=msgspec.Raw(bytes(body)),
                    deliveries=deliveries,
                )
            return None

        return await self._reader.run(query)

    async def list_events(
        self,
        space: str,
        *,
        state: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[EventSummary]:
        """See :meth:`DeliveryLog.list_events`."""
        if state is not None and state not in _RANK_OF:
            return []
        clauses = ["d.space = ?"]
        params: list[Any] = [space]
        if subscription_id is not None:
            clauses.append("d.subscription_id = ?")
            params.append(subscription_id)
        if before_seq is not None:
            clauses.append("d.event_seq < ?")
            params.append(before_seq)
        having = ""
        if state is not None:
            having = "HAVING rank = ?"
            params.append(_RANK_OF[state])
        params.append(limit)
        sql = (
            "SELECT d.event_seq, e.event_id, e.source, e.type, e.received_at, "
            "MAX(CASE WHEN d.state = 'dead' THEN 3 WHEN d.state = 'delivered' THEN 0 "
            "WHEN d.attempts > 0 THEN 2 ELSE 1 END) AS rank, COUNT(*) "
            "FROM deliveries d JOIN events e ON e.seq = d.event_seq "
            f"WHERE {' AND '.join(clauses)} GROUP BY d.event_seq {having} "
            "ORDER BY d.event_seq DESC LIMIT ?"
        )

        def query(conn: sqlite3.Connection) -> list[EventSummary]:
            return [
                EventSummary(
                    seq=seq,
                    id=event_id,
                    source=source,
                    type=type_,
                    received_at=rfc3339(received_at),
                    state=_STATE_BY_RANK[rank],
                    deliveries=count,
                )
                for seq, event_id, source, type_, received_at, rank, count in conn.execute(
                    sql, params
                )
            ]

        return await self._reader.run(query)

    async def _list_dead_letters(self, selected: Selection, limit: int) -> list[DeadLetter]:
        return await self._dead_letters(selected, limit)

    async def get_dead_letter(self, space: str, dead_letter_id: str) -> DeadLetter | None:
        """See :meth:`DeliveryLog.get_dead_letter`."""
        found = await self._dead_letters(Selection(space, [dead_letter_id]), 1)
        return found[0] if found else None

    async def _dead_letters(self, selected: Selection, limit: int) -> list[DeadLetter]:
        where_params = dead_filter(selected, alias="d.")
        if where_params is None:
            return []
        where, params = where_params
        sql = (
            "SELECT d.id, d.subscription_id, d.function_id, e.event_id, d.dead_reason, "
            "d.attempts, d.last_status, d.response_excerpt, d.updated_at, e.body "
            "FROM deliveries d JOIN events e ON e.seq = d.event_seq "
            f"WHERE {where} "
            "ORDER BY d.updated_at DESC, d.id DESC LIMIT ?"
        )

        def query(conn: sqlite3.Connection) -> list[DeadLetter]:
            return [
                dead_letter_view(
                    delivery_id=row[0],
                    subscription_id=row[1],
                    function_id=row[2],
                    event_id=row[3],
                    reason=row[4],
                    attempts=row[5],
                    last_status=row[6],
                    response_excerpt=row[7],
                    dead_at=row[8],
                    body=bytes(row[9]),
                )
                for row in conn.execute(sql, (*params, limit))
            ]

        return await self._reader.run(query)

    async def _redrive(self, selected: Selection) -> int:
        where = dead_filter(selected)
        if where is None:
            return 0
        return await self._writing().submit(redrive_op(where, self._clock))

    async def _purge(self, selected: Selection) -> int:
        where = dead_filter(selected)
        if where is None:
            return 0
        return await self._writing().submit(purge_op(where))

    async def enforce_retention(self, *, max_age_s: float, max_events: int) -> int:
        """See :meth:`DeliveryLog.enforce_retention`.

        Finds the removable events on the reader and deletes them in batches of a few
        hundred, one writer transaction each, so that accepts and acks never wait behind
        one long delete, nor behind a walk past the events retention keeps.
        """
        cutoff = self._clock() - max_age_s

        def limits(conn: sqlite3.Connection) -> tuple[int, int]:
            # The count is of events retention may remove (every delivery delivered): the
            # ones it keeps (pending, dead letters) never push delivered ones out. A probe
            # of deliveries_event per event, newest first, on the reader: ~0.7 s for a
            # million events, off the write lock (docs/delivery.md).
            if max_events <= 0:
                (top,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
                beyond_below = int(top) + 1
            else:
                row = conn.execute(
                    "SELECT seq FROM events WHERE NOT EXISTS (SELECT 1 FROM deliveries "
                    "WHERE event_seq = events.seq AND state != 'delivered') "
                    "ORDER BY seq DESC LIMIT 1 OFFSET ?",
                    (max_events - 1,),
                ).fetchone()
                beyond_below = 0 if row is None else int(row[0])
            return beyond_below, retention_end(conn, beyond_below, cutoff)

        beyond_below, end = await self._reader.run(limits)
        total, after = 0, 0
        while True:
            seqs = await self._reader.run(
                functools.partial(
                    retention_candidates,
                    after_seq=after,
                    end_seq=end,
                    beyond_below=beyond_below,
                    cutoff=cutoff,
                    batch=_RETENTION_BATCH,
                )
            )
            if seqs:
                total += await self._writing().submit(retention_op(seqs, beyond_below, cutoff))
            if len(seqs) < _RETENTION_BATCH:
                return total
            after = seqs[-1]


def _attempt_logs(conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[LoggedAttempt]]:
    logs: dict[int, list[LoggedAttempt]] = {}
    marks = ", ".join("?" * len(ids))
    for delivery_id, *attempt in conn.execute(
        "SELECT delivery_id, started_at, duration_ms, outcome, status, error FROM attempts "
        f"WHERE delivery_id IN ({marks}) ORDER BY delivery_id, attempt",
        ids,
    ):
        started_at, duration_ms, outcome, status, error = attempt
        logs.setdefault(delivery_id, []).append((started_at, duration_ms, outcome, status, error))
    return logs
