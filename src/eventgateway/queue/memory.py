"""``MemoryQueue``: the in-process :class:`DeliveryQueue` and :class:`DeliveryLog`.

It keeps the same contract as the SQLite queue — bounds, de-duplication, ordering by
partition key, leases that expire, dead letters, the attempt log, redrive, replay — but nothing
survives the process. It serves the ``at-most-once`` path (the original gateway's
in-memory behaviour) and tests; users can test against it too.

All state lives on the event loop's thread; nothing here blocks.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence

from eventgateway.errors import StoreError
from eventgateway.events.codec import encode_event
from eventgateway.queue._common import Wakeup, check_bounds, dedup_scope, wait_until_due
from eventgateway.queue._memory_extend import MemoryExtendMixin
from eventgateway.queue._memory_log import MemoryLogMixin
from eventgateway.queue._memory_replay import MemoryReplayMixin
from eventgateway.queue._memory_state import Key, Record, StoredEvent
from eventgateway.queue.base import Accepted, AttemptRecord, Delivery, DeliveryQueue, Room

__all__ = ["MemoryQueue"]


class MemoryQueue(MemoryExtendMixin, MemoryReplayMixin, MemoryLogMixin, DeliveryQueue):
    """A bounded in-memory delivery queue with the delivery log.

    Args:
        max_deliveries: unsettled deliveries allowed before ``accept`` answers 429.
        max_bytes: bytes of events with unsettled deliveries allowed before 429.
        dedup_window_s: how long an event's (source, id) marks later copies duplicates.
        lease_s: how long a leased delivery stays invisible before it is handed out again.
        max_dead_letters: dead letters kept (until redriven or purged) before
            ``dead_letter`` is refused, as in JetStream's dead-letter stream.
        clock: wall-clock seconds; tests pass a fake one and call :meth:`notify` after
            moving it.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        max_deliveries: int = 100_000,
        max_bytes: int = 128 * 1024 * 1024,
        dedup_window_s: float = 300.0,
        lease_s: float = 60.0,
        *,
        max_dead_letters: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._max_deliveries = max_deliveries
        self._max_dead_letters = max_dead_letters
        self._max_bytes = max_bytes
        self._dedup_window_s = dedup_window_s
        self._lease_s = lease_s
        self._clock = clock
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._events: dict[int, StoredEvent] = {}  # in seq order: dicts keep insertion order
        self._by_event_id: dict[str, list[int]] = {}
        self._records: dict[int, Record] = {}
        # Per subscription, (due_at, id) of its leasable-someday records; entries go stale
        # when a record's due_at changes and are dropped when they reach the top. One heap
        # per subscription, so a lease that excludes a busy subscription never walks over
        # that subscription's backlog.
        self._due: dict[str, list[tuple[float, int]]] = {}
        # Unsettled record ids per (space, subscription, partition key), oldest first:
        # only the first is ever due, the others wait with due_at None ("parked").
        self._keys: dict[Key, list[int]] = {}
        self._dedup: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._backlog = 0
        self._bytes = 0
        self._dead_letters = 0
        self._wakeup = Wakeup()
        self._closed = False

    # -- accept -------------------------------------------------------------------------

    async def accept(self, items: Sequence[Accepted]) -> list[bool]:
        """Enqueue events with their deliveries; per item ``True`` if it was a duplicate.

        Raises:
            TooManyRequestsError: the new deliveries would pass a bound; nothing is kept.
            StoreError: the queue is closed.
        """
        if self._closed:
            raise StoreError("the memory queue is closed")
        now = self._clock()
        self._forget_dedup(now)
        plan: list[tuple[Accepted, bytes, tuple[str, str, str]] | None] = []
        results: list[bool] = []
        seen: set[tuple[str, str, str]] = set()
        add_deliveries = add_bytes = 0
        for item in items:
            if not item.deliveries:  # nothing to deliver, so nothing to remember
                plan.append(None)
                results.append(False)
                continue
            key = (dedup_scope(item.deliveries), item.event.source, item.event.id)
            if key in seen or key in self._dedup:
                plan.append(None)
                results.append(True)
                continue
            seen.add(key)
            body = encode_event(item.event) if item.encoded is None else item.encoded
            plan.append((item, body, key))
            results.append(False)
            add_deliveries += len(item.deliveries)
            add_bytes += len(body)
        check_bounds(
            backlog=self._backlog,
            stored_bytes=self._bytes,
            add_deliveries=add_deliveries,
            add_bytes=add_bytes,
            max_deliveries=self._max_deliveries,
            max_bytes=self._max_bytes,
        )
        for step in plan:
            if step is not None:
                self._store(*step, now)
        if add_deliveries:
            self._wakeup.fire()
        return results

    def _forget_dedup(self, now: float) -> None:
        horizon = now - self._dedup_window_s
        while self._dedup:
            key, received_at = next(iter(self._dedup.items()))
            if received_at >= horizon:
                break
            del self._dedup[key]

    def _store(
        self, item: Accepted, body: bytes, dedup_key: tuple[str, str, str], now: float
    ) -> None:
        event = item.event
        # A caller that passed the encoded form handed the event over; any other keeps it.
        kept = event.copy() if item.encoded is None else event
        stored = StoredEvent(next(self._seq), kept, body, now)
        self._events[stored.seq] = stored
        self._by_event_id.setdefault(event.id, []).append(stored.seq)
        self._dedup[dedup_key] = now
        self._dedup.move_to_end(dedup_key)
        for new in item.deliveries:
            record = Record(next(self._ids), stored, new, now)
            stored.records.append(record)
            self._records[record.id] = record
            if new.partition_key is not None:
                waiting = self._keys.setdefault(record.key, [])
                waiting.append(record.id)
                if len(waiting) > 1:
                    record.due_at = None  # parked behind an older delivery of its key
            if record.due_at is not None:
                self._push(record, record.due_at)
        stored.unsettled = len(stored.records)
        self._backlog += stored.unsettled
        self._bytes += stored.size

    # -- lease --------------------------------------------------------------------------

    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        """Wait for due deliveries and lease up to ``max_count``, oldest first.

        ``exclude`` is read afresh each time the queue looks again, so a live set works.
        Returns ``[]`` once the queue is closed.

        Raises:
            ValueError: ``max_count`` is less than 1.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        while not self._closed:
            token = self._wakeup.token()
            batch, next_due = self._take(max_count, frozenset(exclude), room)
            if batch:
                return batch
            await wait_until_due(token, next_due, self._clock)
        return []

    def _push(self, record: Record, due_at: float) -> None:
        heap = self._due.get(record.subscription_id)
        if heap is None:
            heap = self._due[record.subscription_id] = []
        heapq.heappush(heap, (due_at, record.id))

    def _head(self, heap: list[tuple[float, int]]) -> tuple[float, int] | None:
        """The heap's first live entry, after dropping stale ones."""
        records = self._records
        while heap:
            due, record_id = heap[0]
            record = records.get(record_id)
            if record is not None and record.state == "pending" and record.due_at == due:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _take(
        self, max_count: int, exclude: frozenset[str], room: Room | None
    ) -> tuple[list[Delivery], float | None]:
        now = self._clock()
        next_due: float | None = None
        # The due head of every subscription not excluded, merged oldest first.
        heads: list[tuple[float, int, str]] = []
        allowed: dict[str, int] = {}
        for subscription_id, heap in list(self._due.items()):
            if subscription_id in exclude:
                continue
            if room is not None:
                allowed[subscription_id] = room(subscription_id)
                if allowed[subscription_id] <= 0:
                    continue
            head = self._head(heap)
            if head is None:
                del self._due[subscription_id]
            elif head[0] > now:
                next_due = head[0] if next_due is None else min(next_due, head[0])
            else:
                heads.append((head[0], head[1], subscription_id))
        heapq.heapify(heads)
        taken: list[Record] = []
        while heads and len(taken) < max_count:
            subscription_id = heads[0][2]
            heap = self._due[subscription_id]
            taken.append(self._records[heapq.heappop(heap)[1]])
            if room is not None:
                allowed[subscription_id] -= 1
            head = self._head(heap)
            if head is not None and head[0] <= now and allowed.get(subscription_id, 1) > 0:
                heapq.heapreplace(heads, (head[0], head[1], subscription_id))
            else:
                heapq.heappop(heads)
        until = now + self._lease_s
        for record in taken:
            record.due_at = record.lease_until = until
            self._push(record, until)
        taken.sort(key=lambda r: r.id)
        return [record.to_delivery() for record in taken], next_due

    # -- settle -------------------------------------------------------------------------

    async def ack(self, delivery: Delivery, attempt: AttemptRecord) -> None:
        """Mark the delivery delivered and log ``attempt``; a settled one is left alone."""
        record = self._unsettled(delivery)
        if record is not None:
            self._record_attempt(record, attempt)
            self._settle(record, "delivered")

    async def retry_later(self, delivery: Delivery, delay_s: float, attempt: AttemptRecord) -> None:
        """Log ``attempt`` and make the delivery due again ``delay_s`` from now."""
        record = self._unsettled(delivery)
        if record is None:
            return
        self._record_attempt(record, attempt)
        now = self._clock()
        record.lease_until = None
        record.updated_at = now
        if record.partition_key is not None and self._keys[record.key][0] != record.id:
            record.due_at = None  # an older one of its key came back (redrive): wait for it
        else:
            record.due_at = now + delay_s
            self._push(record, record.due_at)
        self._wakeup.fire()

    async def dead_letter(
        self, delivery: Delivery, reason: str, attempt: AttemptRecord | None
    ) -> None:
        """Keep the delivery as a dead letter with ``reason`` (and ``attempt``, if any).

        Raises:
            StoreError: ``max_dead_letters`` are kept: nothing was changed, and the
                delivery comes back when its lease runs out.
        """
        record = self._unsettled(delivery)
        if record is not None:
            if self._dead_letters >= self._max_dead_letters:
                raise StoreError(
                    f"cannot dead-letter delivery {delivery.id}: {self._max_dead_letters} "
                    f"dead letters are kept already; redrive or purge some "
                    f"(/v1/spaces/{delivery.space}/deadletters). The delivery stays queued "
                    "and is tried again when its lease runs out"
                )
            self._dead_letters += 1
            if attempt is not None:
                self._record_attempt(record, attempt)
            record.dead_reason = reason
            self._settle(record, "dead")

    def _unsettled(self, delivery: Delivery) -> Record | None:
        record = self._records.get(int(delivery.id))
        return record if record is not None and record.state == "pending" else None

    def _record_attempt(self, record: Record, attempt: AttemptRecord) -> None:
        record.log.append(
            (
                attempt.started_at,
                attempt.duration_s * 1000.0,
                attempt.outcome,
                attempt.status,
                attempt.error,
            )
        )
        record.attempts += 1
        record.last_status = attempt.status
        record.last_error = attempt.error
        record.response_excerpt = attempt.response_excerpt

    def _settle(self, record: Record, state: str) -> None:
        now = self._clock()
        record.state = state
        record.due_at = record.lease_until = None
        record.updated_at = now
        self._backlog -= 1
        stored = record.event
        stored.unsettled -= 1
        if stored.unsettled == 0:
            self._bytes -= stored.size
        if record.partition_key is not None:
            waiting = self._keys[record.key]
            del waiting[bisect.bisect_left(waiting, record.id)]
            if waiting:
                self._unpark(self._records[waiting[0]], now)
            else:
                del self._keys[record.key]

    def _unpark(self, record: Record, now: float) -> None:
        if record.due_at is None:
            record.due_at = now
            self._push(record, now)
            self._wakeup.fire()

    # -- redrive (called by the log mixin) ------------------------------------------------

    def _revive(self, records: list[Record]) -> None:
        now = self._clock()
        touched: set[Key] = set()
        self._dead_letters -= len(records)
        for record in records:
            record.state = "pending"
            record.attempts = 0
            record.dead_reason = ""
            record.updated_at = now
            record.due_at = now
            # A dead letter is usually older than its policy's max age: counted from the
            # event's arrival, the retries would be over after one attempt.
            record.accepted_at = now
            stored = record.event
            if stored.unsettled == 0:
                self._bytes += stored.size
            stored.unsettled += 1
            self._backlog += 1
            if record.partition_key is None:
                self._push(record, now)
            else:
                record.due_at = None
                bisect.insort(self._keys.setdefault(record.key, []), record.id)
                touched.add(record.key)
        for key in touched:
            # The oldest unsettled delivery of the key goes first, even if a newer one is
            # in flight: park every other one (a leased one finishes its attempt).
            head, *rest = self._keys[key]
            for record_id in rest:
                self._records[record_id].due_at = None
            self._unpark(self._records[head], now)
        if records:
            self._wakeup.fire()

    # -- lifecycle and counters ------------------------------------------------------------

    def notify(self) -> None:
        """Look for due deliveries now (e.g. after a test moved the clock)."""
        self._wakeup.fire()

    def backlog(self) -> int:
        """Deliveries accepted and not yet settled."""
        return self._backlog

    def is_full(self) -> bool:
        """Whether ``accept`` refuses every new delivery now (closed, or a bound reached)."""
        return (
            self._closed or self._backlog >= self._max_deliveries or self._bytes >= self._max_bytes
        )

    def stats(self) -> dict[str, int]:
        """``backlog``, ``bytes`` (of events with unsettled deliveries), stored ``events``."""
        return {"backlog": self._backlog, "bytes": self._bytes, "events": len(self._events)}

    async def close(self) -> None:
        """Stop handing out deliveries and wake every waiting ``lease``."""
        self._closed = True
        self._wakeup.fire()
