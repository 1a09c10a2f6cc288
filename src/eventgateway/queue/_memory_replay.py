"""Replay on :class:`~eventgateway.queue.memory.MemoryQueue` (rules: :mod:`.replay`)."""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable

from eventgateway.queue._common import Wakeup
from eventgateway.queue._memory_state import Key, Record, StoredEvent
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

__all__ = ["MemoryReplayMixin"]


class MemoryReplayMixin(DeliveryLog):
    """``replay`` over the in-memory records; ``MemoryQueue`` provides the state."""

    _clock: Callable[[], float]
    _ids: itertools.count[int]
    _events: dict[int, StoredEvent]
    _by_event_id: dict[str, list[int]]
    _records: dict[int, Record]
    _keys: dict[Key, list[int]]
    _backlog: int
    _bytes: int
    _max_deliveries: int
    _max_bytes: int
    _wakeup: Wakeup

    @abc.abstractmethod
    def _push(self, record: Record, due_at: float) -> None:
        """Make ``record`` leasable from ``due_at`` (the queue's per-subscription heaps)."""

    async def _replay(
        self, selected: Selection, subscriptions: Subscriptions, max_events: int
    ) -> ReplayResult:
        space = selected.space
        chosen = self._replay_selection(selected, max_events)
        result = ReplayResult(events=len(chosen))
        plans: list[tuple[StoredEvent, list[Planned]]] = []
        for stored in chosen:
            mine = sorted((r for r in stored.records if r.space == space), key=lambda r: r.id)
            planned = plan_event(
                [_original(r) for r in mine],
                subscription_id=selected.subscription_id,
                subscriptions=subscriptions,
                event=stored.event.copy,
                skipped=result.skipped,
            )
            if planned:
                plans.append((stored, planned))
        count = sum(len(planned) for _, planned in plans)
        add_bytes = sum(stored.size for stored, _ in plans if stored.unsettled == 0)
        full = self._backlog + count > self._max_deliveries
        if full or self._bytes + add_bytes > self._max_bytes:
            raise refused(
                add_deliveries=count,
                add_bytes=add_bytes,
                backlog=self._backlog,
                stored_bytes=self._bytes,
                max_deliveries=self._max_deliveries,
                max_bytes=self._max_bytes,
            )
        now = self._clock()
        for stored, planned in plans:
            for plan in planned:
                self._add_replay(space, stored, plan, now)
            if stored.unsettled == 0:
                self._bytes += stored.size
            stored.unsettled += len(planned)
            self._backlog += len(planned)
        result.replayed = count
        if count:
            self._wakeup.fire()
        return result

    def _add_replay(self, space: str, stored: StoredEvent, plan: Planned, now: float) -> None:
        new = NewDelivery(
            space, plan.subscription_id, plan.function_id, plan.partition_key, plan.auth_request
        )
        record = Record(next(self._ids), stored, new, now, replay_of=int(plan.replay_of))
        stored.records.append(record)
        self._records[record.id] = record
        if new.partition_key is not None:
            waiting = self._keys.setdefault(record.key, [])
            waiting.append(record.id)  # the newest id: behind every unsettled one of its key
            if len(waiting) > 1:
                record.due_at = None
        if record.due_at is not None:
            self._push(record, record.due_at)

    def _replay_selection(self, selected: Selection, max_events: int) -> list[StoredEvent]:
        space, ids = selected.space, selected.ids

        def selectable(stored: StoredEvent) -> bool:
            return any(
                r.space == space and selected.subscription(r.subscription_id)
                for r in stored.records
            )

        if ids is not None:
            found: dict[int, StoredEvent] = {}
            missing: list[str] = []
            for event_id in dict.fromkeys(ids):
                seqs = self._by_event_id.get(event_id, [])
                newest = next((s for s in reversed(seqs) if selectable(self._events[s])), None)
                if newest is None:
                    missing.append(event_id)
                else:
                    found[newest] = self._events[newest]
            if missing:
                raise not_found(space, missing, selected.subscription_id)
            return [found[seq] for seq in sorted(found)]
        chosen: list[StoredEvent] = []
        for stored in self._events.values():  # in acceptance order
            if selected.in_window(stored.received_at) and selectable(stored):
                if len(chosen) == max_events:
                    raise too_many(max_events)
                chosen.append(stored)
        return chosen


def _original(record: Record) -> Original:
    replay_of = None if record.replay_of is None else str(record.replay_of)
    return Original(str(record.id), record.subscription_id, replay_of, record.auth_request)
