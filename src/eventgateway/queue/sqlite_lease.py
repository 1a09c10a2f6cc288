"""The SQLite queue's lease, as a writer op: claim the oldest due deliveries.

The common case reads the head of the ``deliveries_due`` index. When the head is the
backlog of busy subscriptions (excluded, or out of ``room``), the lease walks the
subscriptions with work one by one through ``deliveries_sub_due`` instead, so a long
backlog behind a slow subscriber costs nothing to the others.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from eventgateway.errors import EventParseError
from eventgateway.events.codec import decode_event, decode_json
from eventgateway.queue.base import Delivery, Room
from eventgateway.queue.sqlite_settle import MAX_DEAD_LETTERS, SettleOp
from eventgateway.queue.sqlite_writer import Tx

__all__ = ["CLAIM_BATCH", "Leased", "deliveries_of", "lease_op", "release_all_op", "release_op"]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

# Rows claimed per UPDATE … RETURNING: 100 measured ~156k rows/s here; larger batches
# only make one statement hold the write lock longer.
CLAIM_BATCH = 100

# The head of the queue: due deliveries, oldest first (deliveries_due covers it).
_DUE_HEAD = (
    "SELECT id, subscription_id FROM deliveries WHERE state = 'pending' AND due_at <= ? "
    "ORDER BY due_at, id LIMIT ?"
)
_NEXT_DUE = (
    "SELECT due_at FROM deliveries WHERE state = 'pending' AND due_at IS NOT NULL "
    "ORDER BY due_at LIMIT 1"
)
# Every subscription with a pending, unparked delivery: a skip scan of deliveries_sub_due,
# one index seek per subscription.
_BUSY_SUBSCRIPTIONS = (
    "WITH RECURSIVE subs(s) AS ("
    "SELECT MIN(subscription_id) FROM deliveries "
    "WHERE state = 'pending' AND due_at IS NOT NULL "
    "UNION ALL SELECT (SELECT MIN(subscription_id) FROM deliveries "
    "WHERE state = 'pending' AND due_at IS NOT NULL AND subscription_id > subs.s) "
    "FROM subs WHERE subs.s IS NOT NULL) "
    "SELECT s FROM subs WHERE s IS NOT NULL"
)
_DUE_OF = (
    "SELECT due_at, id FROM deliveries WHERE state = 'pending' AND due_at IS NOT NULL "
    "AND subscription_id = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?"
)
_NEXT_DUE_OF = (
    "SELECT MIN(due_at) FROM deliveries WHERE state = 'pending' AND due_at IS NOT NULL "
    "AND subscription_id = ?"
)
_CLAIM_IDS = (
    "UPDATE deliveries SET due_at = ?1, lease_until = ?1 WHERE id IN ({marks}) "
    "AND state = 'pending' "
    "RETURNING id, event_seq, space, subscription_id, function_id, partition_key, "
    "auth_request, attempts, accepted_at"
)
# How far past max_count the head scan looks before walking subscription by subscription.
_HEAD_SLACK = 64


class Leased(NamedTuple):
    """What a lease op got: the claimed rows (oldest first) with their events' stored
    form, or when to look again. :func:`deliveries_of` decodes them, after the commit:
    the file's write lock (which the other process may be waiting for) is not held for it.
    """

    rows: list[Any]
    stored: dict[int, tuple[bytes, float]]  # event seq → (body, received_at)
    # With no rows: the earliest due_at among subscriptions not excluded (None: nothing
    # is waiting at all).
    next_due: float | None
    lease_until: float
    now: float


def lease_op(
    max_count: int,
    exclude: frozenset[str],
    room: Room | None,
    lease_s: float,
    clock: Clock,
) -> Callable[[Tx], Leased]:
    """Lease up to ``max_count`` due deliveries, oldest first (see ``DeliveryQueue.lease``)."""

    def op(tx: Tx) -> Leased:
        conn = tx.conn
        now = clock()
        until = now + lease_s
        limits = _Limits(exclude, room)
        ids, look_past = _from_head(conn, limits, max_count, now)
        next_due: float | None = None
        if look_past:
            # The head is the backlog of busy subscriptions: look past it, one
            # subscription at a time, so its length costs nothing. Also when nothing of
            # the head could be taken: the next due time must be one of a subscription
            # we may lease now. A busy one's due row, already due, would make the lease
            # look again at once, in a write transaction each time, for as long as its
            # endpoint hangs; a slot freeing there calls notify() instead.
            ids, next_due = _by_subscription(conn, _Limits(exclude, room), max_count, now)
        elif not ids:
            row = conn.execute(_NEXT_DUE).fetchone()
            next_due = None if row is None else float(row[0])
        if not ids:
            return Leased([], {}, next_due, until, now)
        rows = _claim(conn, ids, until)
        rows.sort(key=lambda r: r[0])
        return Leased(rows, _stored(conn, rows), None, until, now)

    return op


class _Limits:
    """What a lease may take of each subscription: nothing if excluded, else its room."""

    __slots__ = ("_exclude", "_left", "_room")

    def __init__(self, exclude: frozenset[str], room: Room | None) -> None:
        self._exclude = exclude
        self._room = room
        self._left: dict[str, int] = {}

    def left(self, subscription_id: str) -> int:
        left = self._left.get(subscription_id)
        if left is None:
            if subscription_id in self._exclude:
                left = 0
            elif self._room is None:
                left = 1 << 30
            else:
                left = max(0, self._room(subscription_id))
            self._left[subscription_id] = left
        return left

    def take(self, subscription_id: str) -> bool:
        left = self.left(subscription_id)
        if left <= 0:
            return False
        self._left[subscription_id] = left - 1
        return True


def _from_head(
    conn: sqlite3.Connection, limits: _Limits, max_count: int, now: float
) -> tuple[list[int], bool]:
    """The ids to claim from the head of the queue; ``True`` if the subscription walk
    must look past it: busy rows crowd it, or every due row was a busy one.

    Rows are read lazily and the read stops once more than ``_HEAD_SLACK`` were skipped:
    past that the subscription walk is cheaper than reading a busy backlog.
    """
    cursor = conn.execute(_DUE_HEAD, (now, max_count + _HEAD_SLACK))
    try:
        ids: list[int] = []
        skipped = 0
        for row_id, subscription_id in cursor:
            if limits.take(subscription_id):
                ids.append(row_id)
                if len(ids) == max_count:
                    return ids, False
            else:
                skipped += 1
                if skipped > _HEAD_SLACK:
                    return ids, True
        # Every due row was seen (the LIMIT is only reached with over _HEAD_SLACK skipped).
        return ids, skipped > 0 and not ids
    finally:
        cursor.close()


def _by_subscription(
    conn: sqlite3.Connection, limits: _Limits, max_count: int, now: float
) -> tuple[list[int], float | None]:
    """The oldest due ids of every subscription with room, and when the next falls due.

    The cost follows the number of subscriptions with work, not the backlog of the
    busy ones.
    """
    candidates: list[tuple[float, int]] = []
    next_due: float | None = None
    for (subscription_id,) in conn.execute(_BUSY_SUBSCRIPTIONS).fetchall():
        want = min(max_count, limits.left(subscription_id))
        if want <= 0:
            continue
        due = conn.execute(_DUE_OF, (subscription_id, now, want)).fetchall()
        if due:
            candidates.extend(due)
            continue
        (first,) = conn.execute(_NEXT_DUE_OF, (subscription_id,)).fetchone()
        if first is not None and (next_due is None or first < next_due):
            next_due = float(first)
    candidates.sort()
    return [row_id for _, row_id in candidates[:max_count]], next_due


def _claim(conn: sqlite3.Connection, ids: list[int], until: float) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(ids), CLAIM_BATCH):
        chunk = ids[start : start + CLAIM_BATCH]
        claim = _CLAIM_IDS.format(marks=", ".join(f"?{n}" for n in range(2, len(chunk) + 2)))
        rows.extend(conn.execute(claim, (until, *chunk)).fetchall())
    return rows


def _stored(conn: sqlite3.Connection, rows: list[Any]) -> dict[int, tuple[bytes, float]]:
    seqs = sorted({row[1] for row in rows})
    stored: dict[int, tuple[bytes, float]] = {}
    for start in range(0, len(seqs), CLAIM_BATCH):
        chunk = seqs[start : start + CLAIM_BATCH]
        marks = ", ".join("?" * len(chunk))
        for seq, body, received_at in conn.execute(
            f"SELECT seq, body, received_at FROM events WHERE seq IN ({marks})", chunk
        ):
            stored[seq] = (bytes(body), float(received_at))
    return stored


def deliveries_of(
    leased: Leased, max_dead_letters: int = MAX_DEAD_LETTERS
) -> tuple[list[Delivery], list[SettleOp]]:
    """The leased rows as deliveries; a row whose stored event cannot be decoded comes
    back as a dead-letter settlement (it would otherwise come back after every lease)."""
    stored, now = leased.stored, leased.now
    decoded: dict[int, Any] = {}
    unreadable: list[SettleOp] = []
    out: list[Delivery] = []
    for row in leased.rows:
        row_id, seq, space, subscription_id, function_id, key, auth, attempts, made_at = row
        body, received_at = stored[seq]
        try:
            # Shared by the event's deliveries in this lease (see Delivery).
            event = decoded[seq] if seq in decoded else decode_event(body)
        except EventParseError as exc:
            logger.error("delivery %d: stored event %d is unreadable: %s", row_id, seq, exc)
            reason = f"stored event cannot be decoded: {exc}"
            unreadable.append(
                SettleOp(row_id, "dead", None, reason, now=now, max_dead_letters=max_dead_letters)
            )
            continue
        decoded.setdefault(seq, event)
        out.append(
            Delivery(
                id=str(row_id),
                space=space,
                subscription_id=subscription_id,
                function_id=function_id,
                event=event,
                # A replay's or a redrive's time, if any: its max age counts from then.
                accepted_at=received_at if made_at is None else made_at,
                body=body,
                attempt=attempts,
                partition_key=key,
                auth_request=None if auth is None else decode_json(auth),
                lease_until=leased.lease_until,
            )
        )
    return out, unreadable


def release_all_op(now: float) -> Callable[[Tx], int]:
    """Hand back every unexpired lease (their holder is known to be gone); how many."""

    def op(tx: Tx) -> int:
        # deliveries_due covers due_at > now: leased rows and retries not yet due.
        cursor = tx.conn.execute(
            "UPDATE deliveries SET due_at = ?1, lease_until = NULL WHERE state = 'pending' "
            "AND due_at > ?1 AND lease_until IS NOT NULL AND lease_until = due_at",
            (now,),
        )
        tx.wake = tx.wake or cursor.rowcount > 0
        return cursor.rowcount

    return op


def release_op(rows: Sequence[tuple[int, float]], now: float) -> Callable[[Tx], None]:
    """Hand back leases nobody will use: (id, lease end) of each — a leasing caller was
    cancelled, or handed rows went back to the file."""

    def op(tx: Tx) -> None:
        tx.conn.executemany(
            "UPDATE deliveries SET due_at = ?, lease_until = NULL WHERE id = ? "
            "AND state = 'pending' AND lease_until = ? AND due_at = lease_until",
            [(now, row_id, lease_until) for row_id, lease_until in rows],
        )
        tx.wake = True

    return op
