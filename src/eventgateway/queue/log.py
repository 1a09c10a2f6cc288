"""The delivery log: the read side of a durable queue, and dead-letter administration.

Every :class:`~eventgateway.queue.base.DeliveryQueue` backend that keeps history also
implements :class:`DeliveryLog`: what happened to an event (every delivery, every
attempt), recent events with their state, dead letters, redrive and purge, and retention.
The Configuration API serves the structs it returns (:mod:`eventgateway.queue.log_views`)
as they are; their JSON names are camelCase and every time is an RFC 3339 UTC string.

States: a delivery is ``pending`` (never attempted), ``retrying`` (pending after at least
one failed attempt), ``delivered`` or ``dead``. An event's state is the worst of its
deliveries' in that space: ``dead`` > ``retrying`` > ``pending`` > ``delivered``.
Time filters take wall-clock seconds (:mod:`eventgateway.queue.selection`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from eventgateway.queue.log_views import (
    DeadLetter,
    EventSummary,
    EventView,
    SpaceHoldings,
)
from eventgateway.queue.replay import (
    MAX_REPLAY_EVENTS,
    ReplayResult,
    Subscriptions,
    check_selection,
)
from eventgateway.queue.selection import Selection

__all__ = ["DeliveryLog"]


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
