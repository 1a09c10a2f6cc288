"""The SQLite queue's administrative writes: redrive, purge and retention, as writer ops."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from eventgateway.queue.log import parse_ids
from eventgateway.queue.sqlite_settle import unpark_head
from eventgateway.queue.sqlite_writer import Tx

__all__ = ["DeadFilter", "dead_filter", "purge_op", "redrive_op", "retention_op"]

Clock = Callable[[], float]
# A WHERE clause over ``deliveries`` and its parameters.
DeadFilter = tuple[str, list[Any]]


def dead_filter(
    space: str,
    ids: Sequence[str] | None,
    subscription_id: str | None,
    since: float | None,
    until: float | None,
    *,
    alias: str = "",
) -> DeadFilter | None:
    """The dead letters the filters select (``None``: certainly none, e.g. no valid id).

    ``alias`` qualifies the columns (``"d."``) when the query joins another table.
    """
    clauses = [f"{alias}state = 'dead'", f"{alias}space = ?"]
    params: list[Any] = [space]
    if ids is not None:
        wanted = sorted(parse_ids(ids))
        if not wanted:
            return None
        clauses.append(f"{alias}id IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    if subscription_id is not None:
        clauses.append(f"{alias}subscription_id = ?")
        params.append(subscription_id)
    if since is not None:
        clauses.append(f"{alias}updated_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{alias}updated_at < ?")
        params.append(until)
    return " AND ".join(clauses), params


def redrive_op(selected: DeadFilter, clock: Clock) -> Callable[[Tx], int]:
    """Make the selected dead letters pending, due now, with attempts reset."""
    where, params = selected

    def op(tx: Tx) -> int:
        conn = tx.conn
        now = clock()
        rows = conn.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, dead_reason = '', "
            "lease_until = NULL, updated_at = ?, "
            "due_at = CASE WHEN partition_key IS NULL THEN ? ELSE NULL END "
            f"WHERE {where} RETURNING event_seq, space, subscription_id, partition_key",
            (now, now, *params),
        ).fetchall()
        if not rows:
            return 0
        conn.execute("UPDATE counters SET dead = dead - ? WHERE id = 1", (len(rows),))
        tx.backlog_delta += len(rows)
        tx.wake = True
        for seq, revived in Counter(row[0] for row in rows).items():
            (pending,) = conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE event_seq = ? AND state = 'pending'",
                (seq,),
            ).fetchone()
            if pending == revived:  # the event had nothing unsettled: it counts again
                (size,) = conn.execute("SELECT size FROM events WHERE seq = ?", (seq,)).fetchone()
                tx.bytes_delta += size
        for space, subscription_id, key in {(r[1], r[2], r[3]) for r in rows if r[3] is not None}:
            # The oldest unsettled delivery of the key goes first, even if a newer one is
            # in flight: park every other one (a leased one still finishes its attempt).
            conn.execute(
                "UPDATE deliveries SET due_at = NULL WHERE state = 'pending' AND space = ?1 "
                "AND subscription_id = ?2 AND partition_key = ?3 AND due_at IS NOT NULL "
                "AND id > (SELECT MIN(id) FROM deliveries WHERE state = 'pending' "
                "AND space = ?1 AND subscription_id = ?2 AND partition_key = ?3)",
                (space, subscription_id, key),
            )
            unpark_head(tx, space, subscription_id, key, now)
        return len(rows)

    return op


def purge_op(selected: DeadFilter) -> Callable[[Tx], int]:
    """Delete the selected dead letters, their attempts, and events left without any."""
    where, params = selected

    def op(tx: Tx) -> int:
        conn = tx.conn
        rows = conn.execute(
            f"DELETE FROM deliveries WHERE {where} RETURNING id, event_seq", params
        ).fetchall()
        if rows:
            conn.execute("UPDATE counters SET dead = dead - ? WHERE id = 1", (len(rows),))
        conn.executemany("DELETE FROM attempts WHERE delivery_id = ?", [(r[0],) for r in rows])
        conn.executemany(
            "DELETE FROM events WHERE seq = ?1 "
            "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1)",
            [(seq,) for seq in {r[1] for r in rows}],
        )
        return len(rows)

    return op


def retention_op(
    after_seq: int, beyond_below: int, cutoff: float, batch: int
) -> Callable[[Tx], tuple[int, int, bool]]:
    """Delete delivered events among the next ``batch`` after ``after_seq``.

    An event goes when every delivery of it is delivered (none pending, none dead: dead
    letters stay until redriven or purged) and either ``seq < beyond_below`` (past the
    count) or nothing about it happened since ``cutoff``. Returns ``(deleted, last seq
    looked at, done)``; the scan is done at the first event that is inside both limits
    (events are in acceptance order, so later ones are too).
    """

    def op(tx: Tx) -> tuple[int, int, bool]:
        conn = tx.conn
        # One statement per batch: each event is one probe of deliveries_event, so the
        # events retention keeps (pending, dead) cost a probe each, never a scan.
        rows = conn.execute(
            "SELECT seq, received_at, EXISTS (SELECT 1 FROM deliveries WHERE event_seq = "
            "events.seq AND (state != 'delivered' OR (events.seq >= ?1 AND updated_at >= ?2))) "
            "FROM events WHERE seq > ?3 ORDER BY seq LIMIT ?4",
            (beyond_below, cutoff, after_seq, batch),
        ).fetchall()
        done = len(rows) < batch
        last = after_seq
        deleted = 0
        for seq, received_at, kept in rows:
            if seq >= beyond_below and received_at >= cutoff:
                done = True
                break
            last = seq
            if kept:
                continue
            conn.execute(
                "DELETE FROM attempts WHERE delivery_id IN "
                "(SELECT id FROM deliveries WHERE event_seq = ?)",
                (seq,),
            )
            conn.execute("DELETE FROM deliveries WHERE event_seq = ?", (seq,))
            conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
            deleted += 1
        return deleted, last, done

    return op
