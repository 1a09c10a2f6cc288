"""Replay on :class:`~eventgateway.queue.sqlite.SqliteQueue` (rules: :mod:`.replay`).

The selection is read on the reader connection, off the write lock: the events and their
deliveries in the space. Which subscriptions still exist is decided on the event loop.
Then one writer transaction, synced like an accept, checks that every selected event is
still stored (retention may have removed one meanwhile: then the selection is read
again), checks the bounds against the ``counters`` row, and inserts the new deliveries.
All or nothing.
"""

from __future__ import annotations

import abc
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

from eventgateway.errors import StoreError
from eventgateway.events.codec import decode_event
from eventgateway.queue.base import NewDelivery
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.replay import (
    Original,
    Planned,
    ReplayResult,
    Subscriptions,
    not_found,
    plan_event,
    refused,
    too_many,
)
from eventgateway.queue.selection import Selection
from eventgateway.queue.sqlite_log import Reader
from eventgateway.queue.sqlite_ops import first_due
from eventgateway.queue.sqlite_schema import values
from eventgateway.queue.sqlite_writer import GroupCommitWriter, Tx

__all__ = ["SqliteReplayMixin"]

# Ids per IN (…) list and rows per multi-row INSERT: ~1,000 parameters at most.
_CHUNK: Final = 100
# A replay whose events retention removed between the read and the write reads again;
# twice in a row means something else is deleting them.
_READS: Final = 2
_COLUMNS: Final = (
    "event_seq, space, subscription_id, function_id, partition_key, auth_request, due_at, "
    "updated_at, replay_of, accepted_at"
)


class _Selected(NamedTuple):
    seq: int
    body: bytes
    originals: list[Original]


class _Full(NamedTuple):
    backlog: int
    stored_bytes: int
    add_bytes: int


class _Vanished(NamedTuple):
    seqs: list[int]


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _select(conn: sqlite3.Connection, selected: Selection, max_events: int) -> list[_Selected]:
    """The selected events, in acceptance order, with their deliveries in ``space``."""
    space, ids, subscription_id = selected.space, selected.ids, selected.subscription_id
    since, until = selected.since, selected.until
    exists = "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.space = ?"
    scope: list[Any] = [space]
    if subscription_id is not None:
        exists += " AND d.subscription_id = ?"
        scope.append(subscription_id)
    exists += ")"
    if ids is not None:
        found: set[int] = set()
        missing: list[str] = []
        for event_id in dict.fromkeys(ids):
            row = conn.execute(
                f"SELECT e.seq FROM events e WHERE e.event_id = ? AND {exists} "
                "ORDER BY e.seq DESC LIMIT 1",
                (event_id, *scope),
            ).fetchone()
            if row is None:
                missing.append(event_id)
            else:
                found.add(int(row[0]))
        if missing:
            raise not_found(space, missing, subscription_id)
        seqs = sorted(found)
    else:
        window = "e.received_at >= ?" + ("" if until is None else " AND e.received_at < ?")
        bounds = [since] if until is None else [since, until]
        # A scan of the covering index (event id, source, space, received_at): the table
        # would be read with every event's body, and no index starts with the time.
        seqs = [
            int(seq)
            for (seq,) in conn.execute(
                f"SELECT e.seq FROM events e INDEXED BY events_by_id WHERE {window} "
                f"AND {exists} ORDER BY e.seq LIMIT ?",
                (*bounds, *scope, max_events + 1),
            )
        ]
        if len(seqs) > max_events:
            raise too_many(max_events)
    bodies: dict[int, bytes] = {}
    originals: dict[int, list[Original]] = {seq: [] for seq in seqs}
    for chunk in _chunks(seqs):
        marks = _marks(len(chunk))
        for seq, body in conn.execute(
            f"SELECT seq, body FROM events WHERE seq IN ({marks})", chunk
        ):
            bodies[seq] = bytes(body)
        for seq, delivery_id, subscription, replay_of, auth in conn.execute(
            "SELECT event_seq, id, subscription_id, replay_of, auth_request FROM deliveries "
            f"WHERE space = ? AND event_seq IN ({marks}) ORDER BY id",
            (space, *chunk),
        ):
            replayed = None if replay_of is None else str(replay_of)
            originals[seq].append(Original(str(delivery_id), subscription, replayed, auth))
    return [_Selected(seq, bodies[seq], originals[seq]) for seq in seqs]


def _replay_op(
    rows: list[tuple[int, str, Planned]],
    seqs: list[int],
    now: float,
    max_deliveries: int,
    max_bytes: int,
) -> Callable[[Tx], int | _Full | _Vanished]:
    """Insert ``rows`` ((event seq, space, plan) each) if every event in ``seqs`` is
    still stored and they fit the bounds; else change nothing."""

    def op(tx: Tx) -> int | _Full | _Vanished:
        conn = tx.conn
        present: set[int] = set()
        add_bytes = 0
        for chunk in _chunks(seqs):
            marks = _marks(len(chunk))
            for seq, size, unsettled in conn.execute(
                "SELECT seq, size, EXISTS (SELECT 1 FROM deliveries WHERE event_seq = e.seq "
                f"AND state = 'pending') FROM events e WHERE seq IN ({marks})",
                chunk,
            ):
                present.add(seq)
                if not unsettled:  # it counts towards the byte bound again
                    add_bytes += size
        if len(present) < len(seqs):
            return _Vanished([seq for seq in seqs if seq not in present])
        backlog, stored = conn.execute("SELECT backlog, bytes FROM counters").fetchone()
        backlog, stored = backlog + tx.backlog_delta, stored + tx.bytes_delta
        if backlog + len(rows) > max_deliveries or stored + add_bytes > max_bytes:
            return _Full(backlog, stored, add_bytes)
        busy_keys: set[tuple[str, str, str]] = set()
        inserted: list[tuple[Any, ...]] = []
        for seq, space, plan in rows:
            new = NewDelivery(space, plan.subscription_id, plan.function_id, plan.partition_key)
            due = first_due(tx, new, now, busy_keys)
            inserted.append(
                (
                    seq,
                    space,
                    plan.subscription_id,
                    plan.function_id,
                    plan.partition_key,
                    plan.auth_request,
                    due,
                    now,
                    int(plan.replay_of),
                    now,
                )
            )
        for chunk in _chunks(inserted):
            conn.execute(
                f"INSERT INTO deliveries ({_COLUMNS}) VALUES {values(len(chunk), 10)}",
                [value for row in chunk for value in row],
            )
        tx.backlog_delta += len(rows)
        tx.bytes_delta += add_bytes
        tx.wake = True
        return len(rows)

    return op


class SqliteReplayMixin(DeliveryLog):
    """``replay`` over the queue's tables; ``SqliteQueue`` provides the plumbing."""

    _clock: Callable[[], float]
    _reader: Reader
    _max_deliveries: int
    _max_bytes: int

    @abc.abstractmethod
    def _writing(self) -> GroupCommitWriter:
        """The writer, or :class:`StoreError` if the queue is not open."""

    async def _replay(
        self, selected: Selection, subscriptions: Subscriptions, max_events: int
    ) -> ReplayResult:
        # Raises StoreError: SQLite failed (nothing was replayed), or retention removed
        # selected events twice between reading and writing.
        select = functools.partial(_select, selected=selected, max_events=max_events)
        for _ in range(_READS):
            chosen = await self._reader.run(select)
            result = ReplayResult(events=len(chosen))
            rows: list[tuple[int, str, Planned]] = []
            for event in chosen:
                planned = plan_event(
                    event.originals,
                    subscription_id=selected.subscription_id,
                    subscriptions=subscriptions,
                    event=functools.partial(decode_event, event.body),
                    skipped=result.skipped,
                )
                rows += [(event.seq, selected.space, plan) for plan in planned]
            if not rows:
                return result
            seqs = sorted({seq for seq, _, _ in rows})
            op = _replay_op(rows, seqs, self._clock(), self._max_deliveries, self._max_bytes)
            outcome = await self._writing().submit(op)
            if isinstance(outcome, _Full):
                raise refused(
                    add_deliveries=len(rows),
                    add_bytes=outcome.add_bytes,
                    backlog=outcome.backlog,
                    stored_bytes=outcome.stored_bytes,
                    max_deliveries=self._max_deliveries,
                    max_bytes=self._max_bytes,
                )
            if not isinstance(outcome, _Vanished):
                result.replayed = outcome
                return result
        raise StoreError(
            "cannot replay: events it selected were deleted while it ran, twice (retention "
            "or a purge); nothing was replayed, try again"
        )
