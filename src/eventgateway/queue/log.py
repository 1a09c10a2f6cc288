"""The delivery log: the read side of a durable queue, and dead-letter administration.

Every :class:`~eventgateway.queue.base.DeliveryQueue` backend that keeps history also
implements :class:`DeliveryLog`: what happened to an event (every delivery, every
attempt), recent events with their state, dead letters, redrive and purge, and retention.
The Configuration API serves these structs as they are; their JSON names are camelCase
and every time is an RFC 3339 UTC string.

States: a delivery is ``pending`` (never attempted), ``retrying`` (pending after at least
one failed attempt), ``delivered`` or ``dead``. An event's state is the worst of its
deliveries' in that space: ``dead`` > ``retrying`` > ``pending`` > ``delivered``.
Time filters take wall-clock seconds (:mod:`eventgateway.queue.selection`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

from eventgateway.events.model import format_rfc3339
from eventgateway.queue.replay import (
    MAX_REPLAY_EVENTS,
    ReplayResult,
    Subscriptions,
    check_selection,
)
from eventgateway.queue.selection import Selection

__all__ = [
    "STATES",
    "AttemptView",
    "DeadLetter",
    "DeliveryLog",
    "DeliveryState",
    "DeliveryView",
    "EventSummary",
    "EventView",
    "LoggedAttempt",
    "SpaceHoldings",
    "aggregate_state",
    "dead_letter_view",
    "delivery_state",
    "delivery_view",
    "rfc3339",
]

DeliveryState = Literal["pending", "retrying", "delivered", "dead"]
STATES: Final[tuple[DeliveryState, ...]] = ("pending", "retrying", "delivered", "dead")

# Higher is worse; an event shows its worst delivery.
_RANK: Final[dict[str, int]] = {"delivered": 0, "pending": 1, "retrying": 2, "dead": 3}


class AttemptView(msgspec.Struct, kw_only=True, rename="camel"):
    """One attempt to deliver, as recorded when it was settled."""

    attempt: int  # 1-based position in this delivery's log (redrive does not reset it)
    started_at: str
    duration_ms: float
    outcome: str  # "delivered" | "failed" | "skipped"
    status: int | None = None
    error: str = ""


class DeliveryView(msgspec.Struct, kw_only=True, rename="camel"):
    """One delivery of an event to one subscription, with its attempt log."""

    delivery_id: str
    subscription_id: str
    function_id: str
    state: str
    attempts: int  # attempts counted against the retry policy (redrive resets it)
    next_attempt_at: str | None = None  # None when settled, in flight, or held by ordering
    last_status: int | None = None
    last_error: str = ""
    dead_reason: str = ""
    attempt_log: list[AttemptView] = msgspec.field(default_factory=list)
    # Set on a delivery made by a replay: the id of the delivery it repeats.
    replay_of: str | None = None


class EventView(msgspec.Struct, kw_only=True, rename="camel"):
    """An accepted event with its deliveries in one space."""

    id: str
    source: str
    type: str
    specversion: str
    received_at: str
    state: str
    event: msgspec.Raw  # the event exactly as it is delivered
    deliveries: list[DeliveryView] = msgspec.field(default_factory=list)


class EventSummary(msgspec.Struct, kw_only=True, rename="camel"):
    """One line of the recent-events listing.

    ``seq`` orders events by acceptance; pass the last one seen as ``before_seq`` to
    get the next page.
    """

    seq: int
    id: str
    source: str
    type: str
    received_at: str
    state: str
    deliveries: int


class DeadLetter(msgspec.Struct, kw_only=True, rename="camel"):
    """A delivery given up on, kept for inspection and redrive."""

    dead_letter_id: str  # the delivery's id
    subscription_id: str
    function_id: str
    event_id: str
    reason: str
    attempts: int
    last_status: int | None = None
    response_excerpt: str = ""
    dead_at: str
    event: msgspec.Raw


class SpaceHoldings(msgspec.Struct, frozen=True):
    """What a space still has in the delivery log that deleting the space would lose."""

    dead_letters: int
    unsettled: int  # accepted deliveries not yet settled: pending, retrying or in flight


def rfc3339(seconds: float) -> str:
    """Wall-clock seconds as an RFC 3339 UTC string (microseconds, trailing zeros dropped)."""
    return format_rfc3339(datetime.fromtimestamp(seconds, UTC))


def delivery_state(state: str, attempts: int) -> DeliveryState:
    """The log's name for a stored state: pending with attempts made is ``retrying``."""
    if state == "pending":
        return "retrying" if attempts > 0 else "pending"
    return "dead" if state == "dead" else "delivered"


def aggregate_state(states: Iterable[str]) -> str:
    """The worst of some delivery states (``delivered`` for none)."""
    return max(states, key=_RANK.__getitem__, default="delivered")


# (started_at, duration_ms, outcome, status, error): one attempt as backends store it.
LoggedAttempt = tuple[float, float, str, int | None, str]


def delivery_view(
    *,
    delivery_id: int,
    subscription_id: str,
    function_id: str,
    state: str,
    attempts: int,
    due_at: float | None,
    lease_until: float | None,
    now: float,
    last_status: int | None,
    last_error: str,
    dead_reason: str,
    log: Iterable[LoggedAttempt],
    replay_of: int | str | None = None,
) -> DeliveryView:
    """Build a :class:`DeliveryView` from a backend's stored columns (same for all)."""
    in_flight = lease_until is not None and lease_until > now
    return DeliveryView(
        delivery_id=str(delivery_id),
        subscription_id=subscription_id,
        function_id=function_id,
        state=delivery_state(state, attempts),
        attempts=attempts,
        next_attempt_at=(
            rfc3339(due_at) if state == "pending" and due_at is not None and not in_flight else None
        ),
        last_status=last_status,
        last_error=last_error,
        dead_reason=dead_reason,
        attempt_log=[
            AttemptView(
                attempt=number,
                started_at=rfc3339(started_at),
                duration_ms=duration_ms,
                outcome=outcome,
                status=status,
                error=error,
            )
            for number, (started_at, duration_ms, outcome, status, error) in enumerate(log, 1)
        ],
        replay_of=None if replay_of is None else str(replay_of),
    )


def dead_letter_view(
    *,
    delivery_id: int,
    subscription_id: str,
    function_id: str,
    event_id: str,
    reason: str,
    attempts: int,
    last_status: int | None,
    response_excerpt: str,
    dead_at: float,
    body: bytes,
) -> DeadLetter:
    """Build a :class:`DeadLetter` from a backend's stored columns (same for all)."""
    return DeadLetter(
        dead_letter_id=str(delivery_id),
        subscription_id=subscription_id,
        function_id=function_id,
        event_id=event_id,
        reason=reason,
        attempts=attempts,
        last_status=last_status,
        response_excerpt=response_excerpt,
        dead_at=rfc3339(dead_at),
        event=msgspec.Raw(body),
    )


class DeliveryLog(abc.ABC):
    """What happened to accepted events, and the dead letters' administration.

    Everything is scoped to one space: another space's deliveries of the same event are
    never shown, counted, redriven or purged.
    """

    @abc.abstractmethod
    async def get_event(self, space: str, event_id: str) -> EventView | None:
        """The newest accepted event with id ``event_id`` that has deliveries in ``space``.

        Returns ``None`` when there is none (also when the event only has deliveries in
        other spaces).
        """

    @abc.abstractmethod
    async def list_events(
        self,
        space: str,
        *,
        state: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[EventSummary]:
        """Recent events with deliveries in ``space``, newest first.

        Args:
            state: only events whose aggregate state is this (see :data:`STATES`).
            subscription_id: only events with a delivery to this subscription; the state
                and delivery count are then those of that subscription's deliveries.
            limit: at most this many.
            before_seq: only events accepted before this one (paging).
        """

    async def list_dead_letters(
        self,
        space: str,
        *,
        subscription_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Dead letters of ``space``, most recently dead first, filtered by dead time."""
        selected = Selection(space, None, subscription_id, since, until)
        return await self._list_dead_letters(selected, limit)

    @abc.abstractmethod
    async def get_dead_letter(self, space: str, dead_letter_id: str) -> DeadLetter | None:
        """One dead letter, or ``None`` if there is none with that id in ``space``."""

    async def redrive(
        self,
        space: str,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Make matching dead letters pending again, due now, with their attempts reset
        and a retry policy's max age counted from now (``Delivery.accepted_at``).

        Filters combine with AND; none means every dead letter of the space. Redriven
        deliveries count against the queue's bounds but are never refused. Returns how
        many were redriven; a waiting ``lease`` wakes up.
        """
        return await self._redrive(Selection(space, ids, subscription_id, since, until))

    async def replay(
        self,
        space: str,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        subscriptions: Subscriptions,
        max_events: int = MAX_REPLAY_EVENTS,
    ) -> ReplayResult:
        """Deliver stored events of ``space`` again, as new deliveries; all or nothing.

        Selects ``ids`` or the events received in [``since``, ``until``), to each
        subscription they had deliveries to that ``subscriptions`` still has (only
        ``subscription_id``, when given). The rules are :mod:`eventgateway.queue.replay`'s.
        A waiting ``lease`` wakes up.

        Raises:
            ValidationError: nothing safe selected, or more than ``max_events`` events.
            NotFoundError: ids that name no event of the space; nothing was replayed.
            TooManyRequestsError: the new deliveries would pass the queue's bounds;
                nothing was replayed.
        """
        check_selection(ids, since, until, max_events)
        selection = Selection(space, ids, subscription_id, since, until)
        return await self._replay(selection, subscriptions, max_events)

    async def purge(
        self,
        space: str,
        *,
        ids: Sequence[str] | None = None,
        subscription_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Delete matching dead letters (filters as in :meth:`redrive`); returns how many.

        An event left without deliveries is deleted with them.
        """
        return await self._purge(Selection(space, ids, subscription_id, since, until))

    # Each backend implements the four calls above over one Selection.
    @abc.abstractmethod
    async def _list_dead_letters(self, selected: Selection, limit: int) -> list[DeadLetter]: ...

    @abc.abstractmethod
    async def _redrive(self, selected: Selection) -> int: ...

    @abc.abstractmethod
    async def _replay(
        self, selected: Selection, subscriptions: Subscriptions, max_events: int
    ) -> ReplayResult: ...

    @abc.abstractmethod
    async def _purge(self, selected: Selection) -> int: ...

    @abc.abstractmethod
    async def enforce_retention(self, *, max_age_s: float, max_events: int) -> int:
        """Delete the history of delivered events; returns how many events were deleted.

        An event goes when every delivery of it was delivered and either it is not among
        the newest ``max_events`` such events, or it was received and last settled more
        than ``max_age_s`` ago. Events with unsettled deliveries stay, and so do events
        with a dead letter: it leaves only by :meth:`redrive` or :meth:`purge`. Neither
        kind counts towards ``max_events``, so they never push delivered events out.
        De-duplication forgets deleted events, so keep ``max_age_s`` above the window.
        """

    @abc.abstractmethod
    async def holdings(self, space: str) -> SpaceHoldings:
        """How many dead letters and unsettled deliveries ``space`` has.

        Deleting a space waits until both are zero (``docs/security.md``), since
        :meth:`forget_space` would lose them. Linear in the space's history: an
        administrative read, not a hot path.
        """

    @abc.abstractmethod
    async def forget_space(self, space: str) -> None:
        """Delete everything the log holds for ``space``; idempotent.

        The space's deliveries in every state, their attempts, its dead letters, and the
        events left without deliveries go; de-duplication forgets the space's events, so
        the same (source, id) accepted later is new (not on JetStream, whose server keeps
        the ids it stored for ``dedup_window_s``, whatever is purged). Other spaces'
        deliveries of an event (a gateway event fanned out to several) stay. A forgotten
        delivery settled later (its lease holder finishes) shows nowhere.

        Called when a space is deleted, and again before its name is claimed again, so
        that nothing of it passes to the next owner (``docs/security.md``). Callers wait
        until :meth:`holdings` is empty, so nothing accepted is lost unnoticed (JetStream
        cannot find unsettled deliveries by space in its work queue: they stay queued,
        and are skipped once their subscription is gone).
        """

    @abc.abstractmethod
    def stats(self) -> dict[str, int]:
        """Counters for metrics and tests: at least ``backlog`` and ``bytes``."""
