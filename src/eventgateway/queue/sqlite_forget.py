"""Forgetting a deleted space in :class:`~eventgateway.queue.sqlite.SqliteQueue`.

``holdings`` counts on the reader; ``forget_space`` deletes through the group-commit
writer in batches, as retention does, so accepts and acks never wait behind one long
delete of a space with a long history.
"""

from __future__ import annotations

import abc
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Final

from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.log_views import SpaceHoldings
from eventgateway.queue.sqlite_admin import delete_attempts_and_bare_events
from eventgateway.queue.sqlite_log import Reader
from eventgateway.queue.sqlite_writer import GroupCommitWriter, Tx

__all__ = ["SqliteForgetMixin", "forget_op"]

_FORGET_BATCH: Final = 500


def forget_op(space: str, batch: int) -> Callable[[Tx], int]:
    """Delete up to ``batch`` deliveries of ``space`` (any state) with their attempts,
    and the events left without deliveries; returns how many deliveries went.

    The ``counters`` row follows: unsettled ones leave the backlog (and their event's
    bytes, once it has nothing unsettled left), dead ones the dead-letter count.
    """

    def op(tx: Tx) -> int:
        conn = tx.conn
        rows: list[tuple[int, int, str]] = conn.execute(
            "DELETE FROM deliveries WHERE id IN "
            "(SELECT id FROM deliveries WHERE space = ? LIMIT ?) "
            "RETURNING id, event_seq, state",
            (space, batch),
        ).fetchall()
        if not rows:
            return 0
        states = Counter(state for _, _, state in rows)
        if states["dead"]:
            conn.execute("UPDATE counters SET dead = dead - ? WHERE id = 1", (states["dead"],))
        tx.backlog_delta -= states["pending"]
        for seq in {seq for _, seq, state in rows if state == "pending"}:
            # The event's bytes count while any delivery of it is unsettled (another
            # space's, for a gateway event fanned out to several).
            (left,) = conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE event_seq = ? AND state = 'pending'",
                (seq,),
            ).fetchone()
            if not left:
                (size,) = conn.execute("SELECT size FROM events WHERE seq = ?", (seq,)).fetchone()
                tx.bytes_delta -= size
        delete_attempts_and_bare_events(conn, rows)
        return len(rows)

    return op


def _holdings(space: str, conn: sqlite3.Connection) -> SpaceHoldings:
    # Dead letters: a covered count of the deliveries_dead index. Unsettled ones have no
    # index by space (leases need none), so this walks the space's deliveries.
    (dead,) = conn.execute(
        "SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND space = ?", (space,)
    ).fetchone()
    (unsettled,) = conn.execute(
        "SELECT COUNT(*) FROM deliveries WHERE space = ? AND state = 'pending'", (space,)
    ).fetchone()
    return SpaceHoldings(dead_letters=int(dead), unsettled=int(unsettled))


class SqliteForgetMixin(DeliveryLog):
    """``holdings`` and ``forget_space``; ``SqliteQueue`` provides the reader and writer."""

    _reader: Reader

    @abc.abstractmethod
    def _writing(self) -> GroupCommitWriter:
        """The writer, or :class:`StoreError` if the queue is not open."""

    async def holdings(self, space: str) -> SpaceHoldings:
        """See :meth:`DeliveryLog.holdings`.

        Raises:
            StoreError: SQLite failed, or the queue is not open.
        """
        return await self._reader.run(lambda conn: _holdings(space, conn))

    async def forget_space(self, space: str) -> None:
        """See :meth:`DeliveryLog.forget_space`. Each batch is a synced commit, so a
        forget that returned survives power loss; one cut short leaves the rest for the
        next call.

        Raises:
            StoreError: SQLite failed, or the queue is not open.
        """
        while await self._writing().submit(forget_op(space, _FORGET_BATCH)) == _FORGET_BATCH:
            pass
