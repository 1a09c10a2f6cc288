"""Lease renewal for :class:`~eventgateway.queue.jetstream.JetStreamQueue` (``extend``).

A lease is the consumer's ``ack_wait``; ``msg.in_progress()`` (``+WPI``) restarts it on
the server, which may be done any number of times. It is a plain publish (nats-py buffers
it and flushes it at once in the background): one ``extend`` of a hundred deliveries is a
hundred small messages in one write, no round trip.

The server matches a ``+WPI`` by stream sequence, so it would also renew a message that
ran out of ``ack_wait`` and went to another instance meanwhile. The queue therefore keeps,
in each delivery's ``lease_until`` (monotonic seconds), when its lease ends as far as this
client knows (its last keep-alive while parked, or its last renewal, plus ``lease_s``),
and leaves a lease that ran out alone, as the contract asks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from nats.aio.msg import Msg

from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream_wire import is_nats_error, store_error

__all__ = ["JetStreamExtendMixin"]


class JetStreamExtendMixin:
    """``lease_s`` and ``extend``; the queue provides the state."""

    _lease_s: float
    _leased: dict[str, Msg]
    _used_at: float  # the keep-alive mixin's

    @property
    def lease_s(self) -> float:
        """How long a lease lasts (the consumer's ``ack_wait``), in seconds."""
        return self._lease_s

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Restart the ``ack_wait`` of each delivery still leased here (``+WPI``).

        Raises:
            StoreError: the client could not send; the leases not renewed may run out.
        """
        now = self._used_at = time.monotonic()  # renewing: alive, though not leasing
        until = now + self._lease_s
        for delivery in deliveries:
            msg = self._leased.get(delivery.id)
            if msg is None or (delivery.lease_until is not None and delivery.lease_until <= now):
                continue  # settled, or ran out (the server may have handed it out again)
            try:
                await msg.in_progress()
            except Exception as exc:
                if not is_nats_error(exc):
                    raise
                raise store_error(f"renew the lease of delivery {delivery.id}", exc) from exc
            delivery.lease_until = until
