"""The SQLite queue's administrative writes: redrive, purge and retention, as writer ops."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from eventgateway.queue.selection import Selection, parse_ids
from eventgateway.queue.sqlite_settle import unpark_head
from eventgateway.queue.sqlite_writer import Tx

__all__ = [
    "DeadFilter",
    "dead_filter",
    "purge_op",
    "redrive_op",
    "retention_candidates",
    "retention_end",
    "retention_op",
]

Clock = Callable[[], float]
# A WHERE clause over ``deliveries`` and its parameters.
DeadFilter = tuple[str, list[Any]]


def dead_filter(selected: Selection, *, alias: str = "") -> DeadFilter | None:
    """The dead letters the filters select (``None``: certainly none, e.g. no valid id).

    ``alias`` qualifies the columns (``"d."``) when the query joins another table.
    """
    clauses = [f"{alias}state = 'dead'", f"{alias}space = ?"]
    params: list[Any] = [selected.space]
    if selected.ids is not None:
        wanted = sorted(parse_ids(selected.ids))
        if not wanted:
            return None
        clauses.append(f"{alias}id IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    if selected.subscription_id is not None:
        clauses.append(f"{alias}subscription_id = ?")
        params.append(selected.subscription_id)
    if selected.since is not None:
        clauses.append(f"{alias}updated_at >= ?")
        params.append(selected.since)
    if selected.until is not None:
        clauses.append(f"{alias}updated_at < ?")
        params.append(selected.until)
    return " AND ".join(clauses), params


def redrive_op(selected: DeadFilter, clock: Clock) -> Callable[[Tx], int]:
    """Make the selected dead letters pending, due now, with attempts reset and a retry
    policy's max age counted from now (``accepted_at``)."""
    where, params = selected

    def op(tx: Tx) -> int:
        conn = tx.conn
        now = clock()
        # accepted_at: a dead letter is usually older than its policy's max age; counted
        # from the event's receipt, the retries would be over after one attempt.
        rows = conn.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, dead_reason = '', "
            "lease_until = NULL, updated_at = ?, accepted_at = ?, "
            "due_at = CASE WHEN partition_key IS NULL THEN ? ELSE NULL END "
            f"WHERE {where} RETURNING event_seq, space, subscription_id, partition_key",
            (now, now, now, *params),
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
        delete_attempts_and_bare_events(conn, rows)
        return len(rows)

    return op


def delete_attempts_and_bare_events(
    conn: sqlite3.Connection, deleted: Sequence[tuple[object, ...]]
) -> None:
    """After deleting deliveries (rows starting ``id, event_seq``): their attempts, and each of
    their events that no delivery is left for (an event's row is its de-duplication
    entry too: its source and id are new again once it goes)."""
    conn.executemany("DELETE FROM attempts WHERE delivery_id = ?", [(r[0],) for r in deleted])
    conn.executemany(
        "DELETE FROM events WHERE seq = ?1 "
        "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = ?1)",
        [(seq,) for seq in {r[1] for r in deleted}],
    )


# Removable: every delivery delivered (a dead letter or a pending delivery keeps its
# event), and past the count (``seq < ?1``) or quiet since the cutoff (``?2``).
_REMOVABLE = (
    "NOT EXISTS (SELECT 1 FROM deliveries WHERE event_seq = events.seq AND "
    "(state != 'delivered' OR (events.seq >= ?1 AND updated_at >= ?2)))"
)
_NO_END = 2**63 - 1


def retention_end(conn: sqlite3.Connection, beyond_below: int, cutoff: float) -> int:
    """The first event inside both limits (not past the count, received since ``cutoff``):
    retention looks at the events before it only (later ones are inside both too)."""
    row = conn.execute(
        "SELECT seq FROM events WHERE seq >= ? AND received_at >= ? ORDER BY seq LIMIT 1",
        (beyond_below, cutoff),
    ).fetchone()
    return _NO_END if row is None else int(row[0])


def retention_candidates(
    conn: sqlite3.Connection,
    after_seq: int,
    end_seq: int,
    beyond_below: int,
    cutoff: float,
    batch: int,
) -> list[int]:
    """The next ``batch`` removable events after ``after_seq`` (and before ``end_seq``).

    A read: run it on the reader connection. The events retention keeps (dead letters,
    pending deliveries) are walked here, one probe of ``deliveries_event`` each inside
    one statement, so at a million dead letters the walk costs the writer nothing.
    """
    rows = conn.execute(
        f"SELECT seq FROM events WHERE seq > ?3 AND seq < ?4 AND {_REMOVABLE} "
        "ORDER BY seq LIMIT ?5",
        (beyond_below, cutoff, after_seq, end_seq, batch),
    ).fetchall()
    return [int(seq) for (seq,) in rows]


def retention_op(seqs: Sequence[int], beyond_below: int, cutoff: float) -> Callable[[Tx], int]:
    """Delete the events ``seqs`` (from :func:`retention_candidates`) that are still
    removable, with their deliveries and attempts; returns how many went.

    Checked again because the reader's snapshot may be older than the write (another
    process shares the file): one probe per event, so the writer's work is the deletions.
    """

    def op(tx: Tx) -> int:
        conn = tx.conn
        marks = ", ".join(f"?{n}" for n in range(3, 3 + len(seqs)))
        doomed = [
            seq
            for (seq,) in conn.execute(
                f"SELECT seq FROM events WHERE seq IN ({marks}) AND {_REMOVABLE}",
                (beyond_below, cutoff, *seqs),
            )
        ]
        for seq in doomed:
            conn.execute(
                "DELETE FROM attempts WHERE delivery_id IN "
                "(SELECT id FROM deliveries WHERE event_seq = ?)",
                (seq,),
            )
            conn.execute("DELETE FROM deliveries WHERE event_seq = ?", (seq,))
            conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        return len(doomed)

    return op
