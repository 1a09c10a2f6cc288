"""Lease renewal for :class:`~eventgateway.queue.memory.MemoryQueue` (``extend``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eventgateway.queue._common import Wakeup
from eventgateway.queue._memory_state import Record
from eventgateway.queue.base import Delivery

__all__ = ["MemoryExtendMixin"]


class MemoryExtendMixin:
    """``lease_s``, ``extend`` and ``release``; the queue provides the state."""

    _lease_s: float
    _clock: Callable[[], float]
    _records: dict[int, Record]
    _push: Callable[[Record, float], None]  # the queue's: index a record's new due time
    _wakeup: Wakeup

    @property
    def lease_s(self) -> float:
        """How long a lease lasts, in seconds."""
        return self._lease_s

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Make each still-leased delivery's lease end ``lease_s`` from now; a settled
        delivery, or one whose lease ran out (``lease_until`` no longer its lease's end),
        is left alone."""
        now = self._clock()
        until = now + self._lease_s
        for delivery in deliveries:
            record = self._still_leased(delivery, now)
            if record is None:
                continue
            record.due_at = record.lease_until = delivery.lease_until = until
            self._push(record, until)  # the old heap entry is stale now and gets dropped

    async def release(self, deliveries: Sequence[Delivery], delay_s: float = 0.0) -> None:
        """See :meth:`DeliveryQueue.release`: due again, the attempt count unchanged."""
        now = self._clock()
        for delivery in deliveries:
            record = self._still_leased(delivery, now)
            if record is None:
                continue
            record.lease_until = None
            record.due_at = now + delay_s
            self._push(record, record.due_at)
        self._wakeup.fire()

    def _still_leased(self, delivery: Delivery, now: float) -> Record | None:
        """The delivery's record if ``delivery`` still holds its lease: not settled, not
        run out (``lease_until`` no longer its lease's end: it may be leased again)."""
        record = self._records.get(int(delivery.id))
        if (
            record is None
            or record.state != "pending"
            or record.lease_until is None
            or record.lease_until != delivery.lease_until
            or record.due_at != record.lease_until
            or record.lease_until <= now
        ):
            return None
        return record
