"""The records of the JetStream delivery log, and how they fold into event views.

Every change to a delivery appends one record to its event's subject in the
``<prefix>-log`` stream (see :class:`~eventgateway.queue.jetstream_wire.Names`); nothing
is rewritten, so a settle costs one publish and no read. A view is the fold of the
subject's records in stream order. No I/O here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from eventgateway.queue.log_views import (
    DeliveryView,
    EventSummary,
    EventView,
    LoggedAttempt,
    aggregate_state,
    delivery_state,
    delivery_view,
    rfc3339,
)

__all__ = [
    "LOST_ATTEMPT",
    "Accepted",
    "EventState",
    "Purged",
    "Record",
    "Redriven",
    "Replayed",
    "Settled",
    "fold",
]

# Shown as the error of a delivery whose settle was never logged (see ``Settled.reconciled``).
LOST_ATTEMPT = (
    "attempt not logged: the instance stopped between settling this delivery and logging "
    "it; the state is the queue's (no longer held: acknowledged, or dead-lettered)"
)


class Accepted(msgspec.Struct, tag=True, tag_field="kind", array_like=True, omit_defaults=True):
    """An event was accepted in one space with these (delivery id, subscription, function)."""

    at: float
    space: str
    source: str
    event_id: str
    type: str
    specversion: str
    body: bytes
    deliveries: list[tuple[str, str, str]]
    # The request an authorizer sees (set when the event type has one): a replay copies
    # it to the new deliveries. Records of earlier builds have none.
    auth_request: dict[str, Any] | None = None


class Settled(msgspec.Struct, tag=True, tag_field="kind", array_like=True, omit_defaults=True):
    """An attempt was settled: the delivery is now ``delivered``, ``pending`` or ``dead``."""

    at: float
    delivery_id: str
    state: Literal["delivered", "pending", "dead"]
    attempt: LoggedAttempt | None = None
    due_at: float | None = None
    reason: str = ""
    # The stream sequence of the message settled: a redriven delivery keeps its id but is
    # a new message, so this tells its settles apart from those of the message before.
    seq: int | None = None
    # Written by :mod:`.jetstream_reconcile`, not by a settle: the queue no longer held the
    # delivery, but the settle's own record (and its attempt) was lost.
    reconciled: bool = False
    # The delivery moved to message ``seq`` keeping its attempts: written when it is
    # deferred and moved back (:mod:`.jetstream_defer`), and by every settle of a moved
    # message, which may be logged before the move's own record.
    carried: bool = False
    # The attempt's number as the retry policy counted it (the server's delivery count plus
    # the attempts a move carried): an attempt a crash cut off has no record of its own but
    # is counted, so the view shows what "max attempts N reached" counted. Older records
    # have none.
    number: int | None = None


class Redriven(msgspec.Struct, tag=True, tag_field="kind", array_like=True):
    """Dead deliveries were made pending again, with their attempts reset; ``seqs`` are
    the stream sequences of their new messages (empty in records of older versions)."""

    at: float
    delivery_ids: list[str]
    seqs: list[int] = msgspec.field(default_factory=list)


class Purged(msgspec.Struct, tag=True, tag_field="kind", array_like=True):
    """Dead deliveries were deleted."""

    at: float
    delivery_ids: list[str]


class Replayed(msgspec.Struct, tag=True, tag_field="kind", array_like=True):
    """A replay made new deliveries of the event: (delivery id, subscription, function)
    each, and the id of the delivery each repeats (``replay_of``, in the same order)."""

    at: float
    deliveries: list[tuple[str, str, str]]
    replay_of: list[str]


Record = Accepted | Settled | Redriven | Purged | Replayed


@dataclass(slots=True)
class _Delivery:
    id: str
    subscription_id: str
    function_id: str
    # The stream sequence of its current message: its id until a redrive publishes it
    # again; ``None`` after a redrive logged by an older version (no sequence in it).
    message: int | None
    last_at: float  # of the last record about it
    state: str = "pending"
    attempts: int = 0  # the larger of the two below
    logged: int = 0  # attempts with a record
    numbered: int = 0  # the highest attempt number a record gave
    earlier: int = 0  # attempts before the last redrive: the log numbers on from them
    due_at: float | None = None
    last_status: int | None = None
    last_error: str = ""
    dead_reason: str = ""
    log: list[LoggedAttempt] = field(default_factory=list)
    # Each log entry's attempt number as its record gave it (None: a record of an older
    # build, numbered by its place); an attempt a crash cut off leaves a gap.
    numbers: list[int | None] = field(default_factory=list)
    replay_of: str | None = None

    def view(self, now: float) -> DeliveryView:
        return delivery_view(
            delivery_id=int(self.id),
            subscription_id=self.subscription_id,
            function_id=self.function_id,
            state=self.state,
            attempts=self.attempts,
            due_at=self.due_at,
            lease_until=None,
            now=now,
            last_status=self.last_status,
            last_error=self.last_error,
            dead_reason=self.dead_reason,
            log=self.log,
            numbers=self.numbers,
            replay_of=self.replay_of,
        )


@dataclass(slots=True)
class EventState:
    """One event's history in one space, folded."""

    seq: int  # the log stream sequence of its first ``Accepted`` record: acceptance order
    subject: str
    accepted: Accepted
    last_at: float
    deliveries: dict[str, _Delivery] = field(default_factory=dict)
    # The log stream sequence of the last record folded: a record of the subject past it
    # is news this fold has not seen (reconcile checks for one before logging a settle).
    last_seq: int = 0

    @property
    def settled(self) -> bool:
        """Whether every delivery is delivered or dead."""
        return all(d.state != "pending" for d in self.deliveries.values())

    def _chosen(self, subscription_id: str | None) -> list[_Delivery]:
        chosen = [
            d
            for d in self.deliveries.values()
            if subscription_id is None or d.subscription_id == subscription_id
        ]
        return sorted(chosen, key=lambda d: int(d.id))

    def state(self, subscription_id: str | None = None) -> str:
        """The worst state of its deliveries (to ``subscription_id`` only, if given)."""
        return aggregate_state(
            delivery_state(d.state, d.attempts) for d in self._chosen(subscription_id)
        )

    def view(self, now: float) -> EventView:
        """The :class:`EventView` of this event."""
        a = self.accepted
        return EventView(
            id=a.event_id,
            source=a.source,
            type=a.type,
            specversion=a.specversion,
            received_at=rfc3339(a.at),
            state=self.state(),
            event=msgspec.Raw(a.body),
            deliveries=[d.view(now) for d in self._chosen(None)],
        )

    def summary(self, subscription_id: str | None) -> EventSummary | None:
        """The listing line, or ``None`` if it has no delivery to ``subscription_id``."""
        chosen = self._chosen(subscription_id)
        if not chosen:
            return None
        a = self.accepted
        return EventSummary(
            seq=self.seq,
            id=a.event_id,
            source=a.source,
            type=a.type,
            received_at=rfc3339(a.at),
            state=self.state(subscription_id),
            deliveries=len(chosen),
        )


def fold(records: list[tuple[int, str, Record]]) -> list[EventState]:
    """Fold ``(stream sequence, subject, record)`` in stream order into events.

    Returns the events with at least one delivery, in acceptance order. Records of a
    delivery the fold has not seen (its ``Accepted`` was removed) are ignored.
    """
    events: dict[str, EventState] = {}
    # The accepting instance writes ``Accepted`` just after publishing the deliveries, so
    # another instance may settle one (and log it) first: such records wait here.
    early: dict[str, list[Settled | Redriven | Purged | Replayed]] = {}
    # Likewise a replay writes ``Replayed`` after publishing: settles of deliveries the
    # event does not have yet wait here, by (subject, delivery id).
    unknown: dict[tuple[str, str], list[Settled]] = {}
    for seq, subject, record in records:
        state = events.get(subject)
        if isinstance(record, Accepted):
            if state is None:
                state = events[subject] = EventState(seq, subject, record, record.at)
            _add(state, record.deliveries, [None] * len(record.deliveries), record.at, unknown)
            for waiting in early.pop(subject, ()):
                _apply(state, waiting, unknown)
        elif state is not None:
            _apply(state, record, unknown)
        else:
            early.setdefault(subject, []).append(record)
        if state is not None:
            state.last_at = max(state.last_at, record.at)
            state.last_seq = max(state.last_seq, seq)
    return [e for e in events.values() if e.deliveries]


def _add(
    state: EventState,
    deliveries: list[tuple[str, str, str]],
    replay_of: Sequence[str | None],
    at: float,
    unknown: dict[tuple[str, str], list[Settled]],
) -> None:
    """Deliveries an ``Accepted`` or ``Replayed`` record names (the settles that came
    before it applied)."""
    for (delivery_id, subscription_id, function_id), original in zip(
        deliveries, replay_of, strict=True
    ):
        message = int(delivery_id) if delivery_id.isdigit() else None
        d = state.deliveries.setdefault(
            delivery_id,
            _Delivery(delivery_id, subscription_id, function_id, message, at, replay_of=original),
        )
        for settled in unknown.pop((state.subject, delivery_id), ()):
            _settle(d, settled)


def _apply(
    state: EventState,
    record: Settled | Redriven | Purged | Replayed,
    unknown: dict[tuple[str, str], list[Settled]],
) -> None:
    if isinstance(record, Settled):
        if (d := state.deliveries.get(record.delivery_id)) is not None:
            _settle(d, record)
        else:
            unknown.setdefault((state.subject, record.delivery_id), []).append(record)
        return
    if isinstance(record, Replayed):
        _add(state, record.deliveries, record.replay_of, record.at, unknown)
        return
    for index, delivery_id in enumerate(record.delivery_ids):
        if isinstance(record, Purged):
            state.deliveries.pop(delivery_id, None)
        elif (d := state.deliveries.get(delivery_id)) is not None:
            d.last_at = max(d.last_at, record.at)
            seq = record.seqs[index] if index < len(record.seqs) else None
            # Not if a settle of the new message came first (the redrive publishes before
            # it writes this record): the delivery has moved on from that reset already.
            if seq is None or d.message is None or seq > d.message:
                _restart(d, seq)


def _restart(d: _Delivery, message: int | None) -> None:
    """A redrive made ``message`` the delivery's: pending again, attempts from zero."""
    d.message = message
    d.state, d.due_at, d.dead_reason = "pending", None, ""
    d.earlier += d.attempts
    d.attempts = d.logged = d.numbered = 0


def _moved(record: Settled) -> bool:
    """Whether ``record`` is a deferral's or a move's own (no settle writes one such:
    a retry has an attempt, and an ack or dead letter another state)."""
    return (
        record.carried
        and record.state == "pending"
        and record.attempt is None
        and not record.reconciled
    )


def _shown(d: _Delivery, number: int | None) -> int | None:
    """The number the attempt log shows: counted on across redrives, as the other
    backends count (``None``: a record without one, shown by its place)."""
    return None if number is None else d.earlier + number


def _insert(d: _Delivery, attempt: LoggedAttempt, number: int | None) -> None:
    """Put a late record's attempt into the log in start-time order."""
    index = bisect.bisect_right([logged[0] for logged in d.log], attempt[0])
    d.log.insert(index, attempt)
    d.numbers.insert(index, number)


def _settle(d: _Delivery, record: Settled) -> None:
    d.last_at = max(d.last_at, record.at)
    if record.seq is not None and d.message is not None:
        if record.seq < d.message:
            # The message before a redrive, settled but logged after it: history only.
            if record.attempt is not None:
                _insert(d, record.attempt, None)  # its own redrive's numbering
            return
        if record.seq > d.message:
            if record.carried:
                # Deferred and moved back: the same delivery on a newer message, its
                # attempts and log kept (reconcile looks for ``message`` in the stream).
                d.message = record.seq
            else:
                # A redriven message settled before its Redriven record was written (or
                # that record was lost): the redrive happened, so reset as it would.
                _restart(d, record.seq)
        elif _moved(record):
            # A move's notice about the message the delivery is on already: a settle of
            # that message came first (or the move was repeated), and is newer news.
            return
        elif record.reconciled and d.state != "pending":
            # Reconcile saw this message gone and the delivery pending, but from a read
            # older than the settle's own record, which came first: that one is the news.
            return
    elif record.seq is not None:
        d.message = record.seq
    if record.number is not None and record.number < d.numbered:
        # An earlier attempt's settle logged after a later one's (its record was slow
        # and the retry was quick): it counts, but the state is the later attempt's.
        if record.attempt is not None:
            _insert(d, record.attempt, _shown(d, record.number))
            d.logged += 1
            d.attempts = max(d.logged, d.numbered)
        return
    d.state = record.state
    d.due_at = record.due_at
    # Counted, not summed: two attempts' records may be logged in either order.
    d.numbered = max(d.numbered, record.number or 0)
    if record.attempt is not None:
        d.log.append(record.attempt)
        d.numbers.append(_shown(d, record.number))
        d.logged += 1
        d.last_status = record.attempt[3]
        d.last_error = record.attempt[4]
    elif record.reconciled:
        d.last_error = LOST_ATTEMPT
    d.attempts = max(d.logged, d.numbered)
    if record.state == "dead":
        d.dead_reason = record.reason
