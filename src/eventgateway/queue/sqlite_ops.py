"""The SQLite queue's accept, as a writer op (the lease is in ``sqlite_lease.py``).

Ops run on the writer thread inside the batch's transaction, change only the database,
and report counter deltas through their :class:`~.sqlite_writer.Tx`; the queue applies an
op's result once it is committed. :class:`AcceptOp` is a :class:`~.sqlite_writer.BatchOp`:
all the accepts queued while the previous transaction committed are stored with a few
multi-row statements.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

from eventgateway.queue.base import NewDelivery
from eventgateway.queue.sqlite_handoff import HandedEvent, HandedRow
from eventgateway.queue.sqlite_schema import values
from eventgateway.queue.sqlite_writer import BatchOp, Tx

__all__ = ["AcceptOp", "PreparedEvent", "Refused", "first_due"]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

# Rows per multi-row INSERT: ~1,000 parameters, well under SQLite's limit of 32,766.
_ROWS_PER_STATEMENT = 100


def _chunks(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    return [rows[i : i + _ROWS_PER_STATEMENT] for i in range(0, len(rows), _ROWS_PER_STATEMENT)]


@dataclass(slots=True)
class PreparedEvent:
    """An accepted event, encoded on the event loop before it reaches the writer."""

    scope: str  # the de-duplication space
    event_id: str
    source: str
    type: str
    specversion: str
    body: bytes
    deliveries: Sequence[NewDelivery]
    auth_requests: Sequence[bytes | None]


_KEY_BUSY = (
    "SELECT 1 FROM deliveries WHERE state = 'pending' AND space = ? AND subscription_id = ? "
    "AND partition_key = ? LIMIT 1"
)
_SEQUENCES = "SELECT name, seq FROM sqlite_sequence WHERE name IN ('events', 'deliveries')"
_EVENT_COLUMNS = "seq, space, event_id, source, type, specversion, body, received_at, size"
_DELIVERY_COLUMNS = (
    "id, event_seq, space, subscription_id, function_id, partition_key, auth_request, due_at, "
    "lease_until, updated_at"
)


class Refused(NamedTuple):
    """An accept that would have taken the queue past a bound (nothing was written)."""

    backlog: int
    stored_bytes: int
    add_deliveries: int


# Not frozen: ops are made per call on the hot path, and frozen init costs ~3x.
@dataclass(slots=True)
class AcceptOp(BatchOp["list[bool] | Refused"]):
    """Store events not accepted since ``dedup_horizon``: per item ``True`` for a
    duplicate, or :class:`Refused` if the new (non-duplicate) deliveries do not fit.

    The bounds are checked here, against the ``counters`` row read inside the write
    transaction: exact even when several processes accept into one file, and duplicates
    (which take no room) are never refused. ``None`` items (events without deliveries)
    are not stored.

    With ``hand_until``, unpartitioned deliveries are written leased until then (see
    ``sqlite_handoff.py``) and listed in ``handed`` for the leasing process.
    """

    prepared: Sequence[PreparedEvent | None]
    received_at: float
    dedup_horizon: float
    max_deliveries: int
    max_bytes: int
    hand_until: float | None = None
    handed: list[HandedEvent] = field(default_factory=list)

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[Self]) -> list[list[bool] | Refused]:
        conn = tx.conn
        seen = _recently_accepted(tx, ops)
        backlog, stored = conn.execute("SELECT backlog, bytes FROM counters").fetchone()
        # The write lock is held (BEGIN IMMEDIATE), so numbering the rows here is safe
        # across processes, and saves reading each rowid back; AUTOINCREMENT then moves
        # sqlite_sequence past them.
        tops = dict(conn.execute(_SEQUENCES).fetchall())
        seq, delivery_id = int(tops.get("events", 0)), int(tops.get("deliveries", 0))
        wake = False
        events: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        busy_keys: set[tuple[str, str, str]] = set()
        results: list[list[bool] | Refused] = []
        for op in ops:
            op.handed = []  # run again alone if the batch failed
            fresh: dict[tuple[str, str, str], PreparedEvent] = {}
            flags: list[bool] = []
            for item in op.prepared:
                key = ("", "", "") if item is None else (item.event_id, item.source, item.scope)
                last = seen.get(key)
                duplicate = key in fresh or (last is not None and last >= op.dedup_horizon)
                flags.append(item is not None and duplicate)
                if item is not None and not duplicate:
                    fresh[key] = item
            add_deliveries = sum(len(item.deliveries) for item in fresh.values())
            add_bytes = sum(len(item.body) for item in fresh.values())
            now_backlog, now_bytes = backlog + tx.backlog_delta, stored + tx.bytes_delta
            if add_deliveries and (
                now_backlog + add_deliveries > op.max_deliveries
                or now_bytes + add_bytes > op.max_bytes
            ):
                results.append(Refused(now_backlog, now_bytes, add_deliveries))
                continue
            for key, item in fresh.items():
                seen[key] = op.received_at
                seq += 1
                events.append(
                    (
                        seq,
                        item.scope,
                        item.event_id,
                        item.source,
                        item.type,
                        item.specversion,
                        item.body,
                        op.received_at,
                        len(item.body),
                    )
                )
                handed: list[HandedRow] = []
                for new, auth in zip(item.deliveries, item.auth_requests, strict=True):
                    delivery_id += 1
                    until = op.hand_until if new.partition_key is None else None
                    if until is not None:
                        due: float | None = until
                        handed.append(
                            (delivery_id, new.space, new.subscription_id, new.function_id, auth)
                        )
                    else:
                        due = first_due(tx, new, op.received_at, busy_keys)
                        wake = True
                    deliveries.append(
                        (
                            delivery_id,
                            seq,
                            new.space,
                            new.subscription_id,
                            new.function_id,
                            new.partition_key,
                            auth,
                            due,
                            until,
                            op.received_at,
                        )
                    )
                if handed:
                    assert op.hand_until is not None
                    op.handed.append(HandedEvent(item.body, op.received_at, op.hand_until, handed))
            tx.backlog_delta += add_deliveries
            tx.bytes_delta += add_bytes
            results.append(flags)
        for chunk in _chunks(events):
            conn.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES {values(len(chunk), 9)}",
                [value for row in chunk for value in row],
            )
        for chunk in _chunks(deliveries):
            conn.execute(
                f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) VALUES {values(len(chunk), 10)}",
                [value for row in chunk for value in row],
            )
        tx.wake = tx.wake or wake  # handed rows are the leasing process's already
        return results


def _recently_accepted(tx: Tx, ops: Sequence[AcceptOp]) -> dict[tuple[str, str, str], float]:
    """(event id, source, scope) → the latest ``received_at`` of the stored copies that
    are inside the oldest op's window (each op then applies its own horizon)."""
    keys = list(
        {
            (item.event_id, item.source, item.scope)
            for op in ops
            for item in op.prepared
            if item is not None
        }
    )
    horizon = min(op.dedup_horizon for op in ops)
    seen: dict[tuple[str, str, str], float] = {}
    for start in range(0, len(keys), _ROWS_PER_STATEMENT):
        chunk = keys[start : start + _ROWS_PER_STATEMENT]
        rows = tx.conn.execute(
            f"WITH k (event_id, source, space) AS (VALUES {values(len(chunk), 3)}) "
            "SELECT e.event_id, e.source, e.space, MAX(e.received_at) FROM k JOIN events e "
            "ON e.event_id = k.event_id AND e.source = k.source AND e.space = k.space "
            "AND e.received_at >= ? GROUP BY e.event_id, e.source, e.space",
            [*(value for key in chunk for value in key), horizon],
        )
        for event_id, source, space, received_at in rows:
            seen[(event_id, source, space)] = received_at
    return seen


def first_due(
    tx: Tx, new: NewDelivery, now: float, busy_keys: set[tuple[str, str, str]]
) -> float | None:
    """``now``, or ``None`` (parked) when an older delivery of its partition key waits."""
    if new.partition_key is None:
        return now
    key = (new.space, new.subscription_id, new.partition_key)
    if key in busy_keys or tx.conn.execute(_KEY_BUSY, key).fetchone() is not None:
        return None
    busy_keys.add(key)  # later deliveries of this key in the batch park behind it
    return now
