"""Settling deliveries in SQLite — ack, retry later, dead letter — as one batched writer op.

The dispatcher settles deliveries one by one; the writer hands every settle queued
meanwhile to :meth:`SettleOp.run_many`, which updates them with one ``UPDATE … FROM
(VALUES …)`` per hundred rows, logs their attempts with one multi-row ``INSERT``, and
works out the freed bytes with one query.

Dead letters are bounded like JetStream's dead-letter stream (``discard: new``): past
``max_dead_letters`` a dead letter is refused and the delivery stays leased, to come back
when its lease runs out. Nothing is dropped to make room.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Self, TypeVar

from eventgateway.queue.base import AttemptRecord
from eventgateway.queue.sqlite_schema import values
from eventgateway.queue.sqlite_writer import BatchOp, Tx

__all__ = ["MAX_DEAD_LETTERS", "SettleKind", "SettleOp", "unpark_head"]

SettleKind = Literal["delivered", "dead", "retry"]
MAX_DEAD_LETTERS: Final = 1_000_000  # as JetStreamQueue's max_dead_letters
_ROWS_PER_STATEMENT = 100
_Op = TypeVar("_Op")


_FINAL = (
    "WITH v (id, state, attempted, status, error, excerpt, reason, now) AS (VALUES {rows}) "
    "UPDATE deliveries AS d SET state = v.state, attempts = d.attempts + v.attempted, "
    "logged = d.logged + v.attempted, "
    "last_status = CASE WHEN v.attempted THEN v.status ELSE d.last_status END, "
    "last_error = CASE WHEN v.attempted THEN v.error ELSE d.last_error END, "
    "response_excerpt = CASE WHEN v.attempted THEN v.excerpt ELSE d.response_excerpt END, "
    "dead_reason = v.reason, due_at = NULL, lease_until = NULL, updated_at = v.now "
    "FROM v WHERE d.id = v.id AND d.state = 'pending' "
    "RETURNING id, logged, event_seq, space, subscription_id, partition_key"
)
_RETRY = (
    "WITH v (id, status, error, excerpt, due, now) AS (VALUES {rows}) "
    "UPDATE deliveries AS d SET attempts = d.attempts + 1, logged = d.logged + 1, "
    "last_status = v.status, last_error = v.error, response_excerpt = v.excerpt, "
    "lease_until = NULL, updated_at = v.now, "
    # Only the oldest unsettled delivery of a partition key may be due; a newer one can
    # only be retried here after a redrive put an older one back in front of it.
    "due_at = CASE WHEN d.partition_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries o "
    "WHERE o.state = 'pending' AND o.space = d.space AND o.subscription_id = "
    "d.subscription_id AND o.partition_key = d.partition_key AND o.id < d.id) "
    "THEN v.due ELSE NULL END "
    "FROM v WHERE d.id = v.id AND d.state = 'pending' RETURNING id, logged"
)
_FREED = (
    "SELECT COALESCE(SUM(size), 0) FROM events WHERE seq IN ({marks}) AND NOT EXISTS "
    "(SELECT 1 FROM deliveries WHERE event_seq = events.seq AND state = 'pending')"
)


# Not frozen: ops are made per call on the hot path, and frozen init costs ~3x.
@dataclass(slots=True)
class SettleOp(BatchOp[bool | None]):
    """Settle one delivery; the result is ``False`` if it was settled already, ``None``
    if it is a dead letter refused because ``max_dead_letters`` are kept (nothing written).

    ``delivered`` and ``dead`` settle it for good (``dead`` keeps ``reason``); ``retry``
    makes it due at ``due_at``. ``attempt``, when given, is logged and counted.
    """

    row_id: int
    kind: SettleKind
    attempt: AttemptRecord | None
    reason: str = ""
    due_at: float = 0.0
    now: float = 0.0
    max_dead_letters: int = MAX_DEAD_LETTERS

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[Self]) -> list[bool | None]:
        # A delivery settled twice in one batch (a stale lease holder beside the current
        # one): the first settle wins, as it would have one by one.
        first: dict[int, int] = {}
        for index, op in enumerate(ops):
            first.setdefault(op.row_id, index)
        chosen = [ops[index] for index in first.values()]
        done: dict[int, int] = {}  # row id → its attempt number (logged)
        freed_from: set[int] = set()
        keys: set[tuple[str, str, str]] = set()
        refused = _refused_dead_letters(tx, chosen)
        final = [op for op in chosen if op.kind != "retry" and op.row_id not in refused]
        dead = 0
        for chunk in _chunks(final):
            params = [value for op in chunk for value in op._final_row()]
            for row_id, logged, seq, space, subscription_id, key in tx.conn.execute(
                _FINAL.format(rows=values(len(chunk), 8)), params
            ):
                done[row_id] = logged
                dead += ops[first[row_id]].kind == "dead"
                freed_from.add(seq)
                if key is not None:
                    keys.add((space, subscription_id, key))
        tx.backlog_delta -= len(done)
        if dead:
            tx.conn.execute("UPDATE counters SET dead = dead + ? WHERE id = 1", (dead,))
        retries = [op for op in chosen if op.kind == "retry"]
        for chunk in _chunks(retries):
            params = [value for op in chunk for value in op._retry_row()]
            for row_id, logged in tx.conn.execute(
                _RETRY.format(rows=values(len(chunk), 6)), params
            ):
                done[row_id] = logged
                tx.wake = True
        _log_attempts(tx, [(op, done[op.row_id]) for op in chosen if op.row_id in done])
        _free_bytes(tx, sorted(freed_from))
        now = max((op.now for op in final), default=0.0)
        for space, subscription_id, key in keys:
            unpark_head(tx, space, subscription_id, key, now)
        return [
            None if op.row_id in refused else index == first[op.row_id] and op.row_id in done
            for index, op in enumerate(ops)
        ]

    def _final_row(self) -> tuple[Any, ...]:
        attempt = self.attempt
        if attempt is None:
            return (self.row_id, self.kind, 0, None, "", "", self.reason, self.now)
        return (
            self.row_id,
            self.kind,
            1,
            attempt.status,
            attempt.error,
            attempt.response_excerpt,
            self.reason,
            self.now,
        )

    def _retry_row(self) -> tuple[Any, ...]:
        attempt = self.attempt
        assert attempt is not None  # retry_later always has one
        status, error, excerpt = attempt.status, attempt.error, attempt.response_excerpt
        return (self.row_id, status, error, excerpt, self.due_at, self.now)


def _refused_dead_letters(tx: Tx, ops: Sequence[SettleOp]) -> set[int]:
    """The row ids of the dead letters past the bound (first come, first kept)."""
    dead = [op for op in ops if op.kind == "dead"]
    if not dead:
        return set()
    (kept,) = tx.conn.execute("SELECT dead FROM counters WHERE id = 1").fetchone()
    room = max(0, min(op.max_dead_letters for op in dead) - kept)
    return {op.row_id for op in dead[room:]}


def _chunks(ops: Sequence[_Op]) -> list[Sequence[_Op]]:
    return [ops[i : i + _ROWS_PER_STATEMENT] for i in range(0, len(ops), _ROWS_PER_STATEMENT)]


def _log_attempts(tx: Tx, logged: list[tuple[SettleOp, int]]) -> None:
    rows = [
        (
            op.row_id,
            number,
            op.attempt.started_at,
            op.attempt.duration_s * 1000.0,
            op.attempt.outcome,
            op.attempt.status,
            op.attempt.error,
        )
        for op, number in logged
        if op.attempt is not None
    ]
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        tx.conn.execute(
            "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, outcome, "
            f"status, error) VALUES {values(len(chunk), 7)}",
            [value for row in chunk for value in row],
        )


def _free_bytes(tx: Tx, seqs: list[int]) -> None:
    """Events whose last unsettled delivery just settled no longer count in the bound."""
    for start in range(0, len(seqs), _ROWS_PER_STATEMENT):
        chunk = seqs[start : start + _ROWS_PER_STATEMENT]
        marks = ", ".join("?" * len(chunk))
        (freed,) = tx.conn.execute(_FREED.format(marks=marks), chunk).fetchone()
        tx.bytes_delta -= int(freed)


def unpark_head(tx: Tx, space: str, subscription_id: str, key: str, now: float) -> None:
    """Make the oldest unsettled delivery of a partition key due now, if it is parked."""
    cursor = tx.conn.execute(
        "UPDATE deliveries SET due_at = ?1 WHERE id = (SELECT MIN(id) FROM deliveries "
        "WHERE state = 'pending' AND space = ?2 AND subscription_id = ?3 "
        "AND partition_key = ?4) AND due_at IS NULL",
        (now, space, subscription_id, key),
    )
    if cursor.rowcount:
        tx.wake = True
