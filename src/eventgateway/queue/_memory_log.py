"""The :class:`DeliveryLog` side of :class:`~eventgateway.queue.memory.MemoryQueue`."""

from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from eventgateway.queue._memory_state import Key, Record, StoredEvent
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.log_views import (
    DeadLetter,
    EventSummary,
    EventView,
    SpaceHoldings,
    aggregate_state,
    dead_letter_view,
    delivery_state,
    delivery_view,
    rfc3339,
)
from eventgateway.queue.selection import Selection, parse_ids

__all__ = ["MemoryLogMixin"]


class MemoryLogMixin(DeliveryLog):
    """Reads and administers the in-memory records; ``MemoryQueue`` provides the state."""

    _clock: Callable[[], float]
    _events: dict[int, StoredEvent]
    _by_event_id: dict[str, list[int]]
    _records: dict[int, Record]
    _keys: dict[Key, list[int]]
    _dedup: OrderedDict[tuple[str, str, str], float]
    _backlog: int
    _bytes: int
    _dead_letters: int

    @abc.abstractmethod
    def _revive(self, records: list[Record]) -> None:
        """Make dead ``records`` pending again (the queue side of redrive)."""

    # -- events ---------------------------------------------------------------------------

    async def get_event(self, space: str, event_id: str) -> EventView | None:
        """See :meth:`DeliveryLog.get_event`."""
        now = self._clock()
        for seq in reversed(self._by_event_id.get(event_id, [])):
            stored = self._events[seq]
            records = [r for r in stored.records if r.space == space]
            if not records:
                continue
            event = stored.event
            return EventView(
                id=event.id,
                source=event.source,
                type=event.type,
                specversion=event.specversion,
                received_at=rfc3339(stored.received_at),
                state=aggregate_state(delivery_state(r.state, r.attempts) for r in records),
                event=msgspec.Raw(stored.body),
                deliveries=[
                    delivery_view(
                        delivery_id=r.id,
                        subscription_id=r.subscription_id,
                        function_id=r.function_id,
                        state=r.state,
                        attempts=r.attempts,
                        due_at=r.due_at,
                        lease_until=r.lease_until,
                        now=now,
                        last_status=r.last_status,
                        last_error=r.last_error,
                        dead_reason=r.dead_reason,
                        log=r.log,
                        replay_of=r.replay_of,
                    )
                    for r in records
                ],
            )
        return None

    async def list_events(
        self,
        space: str,
        *,
        state: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[EventSummary]:
        """See :meth:`DeliveryLog.list_events`."""
        out: list[EventSummary] = []
        for seq in reversed(self._events):
            if len(out) >= limit:
                break
            if before_seq is not None and seq >= before_seq:
                continue
            stored = self._events[seq]
            records = [
                r
                for r in stored.records
                if r.space == space
                and (subscription_id is None or r.subscription_id == subscription_id)
            ]
            if not records:
                continue
            overall = aggregate_state(delivery_state(r.state, r.attempts) for r in records)
            if state is not None and overall != state:
                continue
            event = stored.event
            out.append(
                EventSummary(
                    seq=seq,
                    id=event.id,
                    source=event.source,
                    type=event.type,
                    received_at=rfc3339(stored.received_at),
                    state=overall,
                    deliveries=len(records),
                )
            )
        return out

    # -- dead letters -------------------------------------------------------------------------

    def _dead(self, selected: Selection) -> list[Record]:
        wanted = None if selected.ids is None else parse_ids(selected.ids)
        return [
            r
            for r in self._records.values()
            if r.state == "dead"
            and r.space == selected.space
            and (wanted is None or r.id in wanted)
            and selected.subscription(r.subscription_id)
            and selected.in_window(r.updated_at)
        ]

    @staticmethod
    def _dead_letter(record: Record) -> DeadLetter:
        return dead_letter_view(
            delivery_id=record.id,
            subscription_id=record.subscription_id,
            function_id=record.function_id,
            event_id=record.event.event.id,
            reason=record.dead_reason,
            attempts=record.attempts,
            last_status=record.last_status,
            response_excerpt=record.response_excerpt,
            dead_at=record.updated_at,
            body=record.event.body,
        )

    async def _list_dead_letters(self, selected: Selection, limit: int) -> list[DeadLetter]:
        dead = self._dead(selected)
        dead.sort(key=lambda r: (r.updated_at, r.id), reverse=True)
        return [self._dead_letter(r) for r in dead[:limit]]

    async def get_dead_letter(self, space: str, dead_letter_id: str) -> DeadLetter | None:
        """See :meth:`DeliveryLog.get_dead_letter`."""
        dead = self._dead(Selection(space, [dead_letter_id]))
        return self._dead_letter(dead[0]) if dead else None

    async def _redrive(self, selected: Selection) -> int:
        dead = self._dead(selected)
        self._revive(dead)
        return len(dead)

    async def _purge(self, selected: Selection) -> int:
        dead = self._dead(selected)
        self._dead_letters -= len(dead)
        for record in dead:
            del self._records[record.id]
            stored = record.event
            stored.records.remove(record)
            if not stored.records:
                self._drop_event(stored)
        return len(dead)

    # -- retention ------------------------------------------------------------------------

    async def enforce_retention(self, *, max_age_s: float, max_events: int) -> int:
        """See :meth:`DeliveryLog.enforce_retention`."""
        cutoff = self._clock() - max_age_s
        # Only events whose every delivery was delivered may go, and only they count.
        removable = [
            stored
            for stored in self._events.values()
            if all(r.state == "delivered" for r in stored.records)
        ]
        beyond_count = len(removable) - max(max_events, 0)  # the oldest ones past the count
        doomed = [
            stored
            for index, stored in enumerate(removable)
            if index < beyond_count or all(r.updated_at < cutoff for r in stored.records)
        ]
        for stored in doomed:
            for record in stored.records:
                del self._records[record.id]
            self._drop_event(stored)
        return len(doomed)

    # -- deleted spaces -------------------------------------------------------------------

    async def holdings(self, space: str) -> SpaceHoldings:
        """See :meth:`DeliveryLog.holdings`."""
        states = [r.state for r in self._records.values() if r.space == space]
        return SpaceHoldings(dead_letters=states.count("dead"), unsettled=states.count("pending"))

    async def forget_space(self, space: str) -> None:
        """See :meth:`DeliveryLog.forget_space`."""
        for stored in list(self._events.values()):
            mine = [r for r in stored.records if r.space == space]
            if not mine:
                continue
            was_unsettled = stored.unsettled > 0
            for record in mine:
                del self._records[record.id]
                stored.records.remove(record)
                if record.state == "pending":
                    self._backlog -= 1
                    stored.unsettled -= 1
                    if record.partition_key is not None:
                        # (space, subscription, key): every record of it goes here too.
                        self._keys.pop(record.key, None)
                elif record.state == "dead":
                    self._dead_letters -= 1
            if was_unsettled and stored.unsettled == 0:
                self._bytes -= stored.size
            if not stored.records:
                self._drop_event(stored)
        # Stale entries of the lease heaps are dropped when they reach the top (_head).
        for key in [key for key in self._dedup if key[0] == space]:
            del self._dedup[key]

    def _drop_event(self, stored: StoredEvent) -> None:
        del self._events[stored.seq]
        same_id = self._by_event_id[stored.event.id]
        same_id.remove(stored.seq)
        if not same_id:
            del self._by_event_id[stored.event.id]
