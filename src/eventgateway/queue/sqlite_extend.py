"""Lease renewal for :class:`~eventgateway.queue.sqlite.SqliteQueue` (``extend``).

A leased row has ``due_at = lease_until = <its lease's end>`` (a claim writes that, and so
does an accept that hands the row over: ``sqlite_handoff.py``); the lease's end is also the
lease's identity: the :class:`Delivery` carries it (``lease_until``), and a renewal matches
on it. So a renewal moves both columns to ``now + lease_s`` only for a row that is still
pending, still under the very lease its caller holds, and not yet expired. A settled row
(``state`` is no longer pending), a retry (``lease_until`` is NULL), a lease handed back
or claimed again since (another ``lease_until``) are left alone. Settling does not look at
the lease, so it works the same after a renewal.

All renewals of a call are one writer op (one ``UPDATE … FROM (VALUES …)`` per hundred
rows), committed without a sync of its own like the leases: power loss may undo the last
renewals, which at worst makes a delivery again (at-least-once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eventgateway.queue.base import Delivery
from eventgateway.queue.sqlite_lease import release_op
from eventgateway.queue.sqlite_writer import GroupCommitWriter, Tx

__all__ = ["SqliteExtendMixin", "extend_op"]

_ROWS_PER_STATEMENT = 100
_EXTEND = (
    "WITH v (id, held) AS (VALUES {rows}) "
    "UPDATE deliveries AS d SET due_at = ?1, lease_until = ?1 FROM v "
    "WHERE d.id = v.id AND d.state = 'pending' AND d.lease_until = v.held "
    "AND d.due_at = d.lease_until AND d.lease_until > ?2 RETURNING id"
)


def extend_op(
    leases: Sequence[tuple[int, float]], lease_s: float, clock: Callable[[], float]
) -> Callable[[Tx], tuple[set[int], float]]:
    """Renew the (row id, lease end) ``leases`` still held; the renewed ids and their new end."""

    def op(tx: Tx) -> tuple[set[int], float]:
        now = clock()
        until = now + lease_s
        renewed: set[int] = set()
        for start in range(0, len(leases), _ROWS_PER_STATEMENT):
            chunk = leases[start : start + _ROWS_PER_STATEMENT]
            # ?1 and ?2 are the new end and now; the VALUES rows number from ?3 on.
            rows = ", ".join(f"(?{n}, ?{n + 1})" for n in range(3, 2 * len(chunk) + 3, 2))
            params = [until, now, *(value for lease in chunk for value in lease)]
            cursor = tx.conn.execute(_EXTEND.format(rows=rows), params)
            renewed.update(row_id for (row_id,) in cursor)
        return renewed, until

    return op


class SqliteExtendMixin:
    """``lease_s``, ``extend`` and ``release``; the queue provides the state."""

    _lease_s: float
    _clock: Callable[[], float]
    _writing: Callable[[], GroupCommitWriter]  # the writer, or StoreError if closed

    @property
    def lease_s(self) -> float:
        """How long a lease lasts, in seconds."""
        return self._lease_s

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Make each still-leased delivery's lease end ``lease_s`` from now, in one write.

        Raises:
            StoreError: SQLite failed; no lease was renewed.
        """
        leases = [(int(d.id), d.lease_until) for d in deliveries if d.lease_until is not None]
        if not leases:
            return
        op = extend_op(leases, self._lease_s, self._clock)
        renewed, until = await self._writing().submit(op, volatile=True)
        for delivery in deliveries:
            if int(delivery.id) in renewed:
                delivery.lease_until = until

    async def release(self, deliveries: Sequence[Delivery], delay_s: float = 0.0) -> None:
        """See :meth:`DeliveryQueue.release`: due again, the attempt count unchanged.

        Raises:
            StoreError: SQLite failed; the leases run out instead.
        """
        leases = [(int(d.id), d.lease_until) for d in deliveries if d.lease_until is not None]
        if leases:
            op = release_op(leases, self._clock() + delay_s)
            await self._writing().submit(op, volatile=True)
