"""Deferring a blocked subscription's overflow out of the shared consumer of
:class:`~eventgateway.queue.jetstream.JetStreamQueue`.

A message fetched from ``<prefix>-dispatch`` is leased to this instance until it is
acked, whether a lease took it or it waits parked or set aside (:mod:`.jetstream_aside`),
and it counts against the consumer's ``max_ack_pending`` all that while. A hung
subscription with a steady inflow would fill this instance's set-aside messages (memory)
and then stall the fetch for every subscription. So past
:data:`~eventgateway.queue.jetstream_aside.ASIDE_PER_SUBSCRIPTION` set aside, its
unordered messages are deferred: carried (:mod:`.jetstream_carry`) to a copy on
``<prefix>.deferred`` in the same stream, with the attempts made so far, due after a
cooldown that doubles with every deferral of the delivery
(:meth:`JetStreamDeferMixin._cooldown`); the original is acked. The mover
(:mod:`.jetstream_mover`) puts the copy back on ``<prefix>.deliveries`` once it is due.
If the copy cannot be stored (a full stream, NATS down) the original is set aside
again, still leased here: nothing is lost and no attempt is counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg

from eventgateway.queue.jetstream_carry import JetStreamCarryMixin
from eventgateway.queue.jetstream_wire import Envelope

__all__ = ["COOLDOWN_S", "MAX_COOLDOWN_S", "JetStreamDeferMixin"]

logger = logging.getLogger(__name__)

# A deferred delivery's first wait. Short enough that a subscription stuck for a moment
# is not kept waiting long; doubled per deferral, since one still blocked after several
# is likely hung and each round trip costs two publishes and two acks.
COOLDOWN_S = 15.0
MAX_COOLDOWN_S = 600.0

_Deferral = tuple[int, Msg, float, Envelope]  # stream sequence, message, keep-alive, body


def _deferred_once_more(envelope: Envelope) -> Envelope:
    return msgspec.structs.replace(envelope, deferred=envelope.deferred + 1)


class JetStreamDeferMixin(JetStreamCarryMixin):
    """Deferring messages taken out of ``_parked``; the queue provides the state."""

    # Attributes, so tests can make them tiny.
    _defer_cooldown_s = COOLDOWN_S
    _defer_max_cooldown_s = MAX_COOLDOWN_S
    _deferring = 0  # messages taken out of ``_parked`` whose deferral has not ended
    _deferrals: set[asyncio.Task[None]] | None = None

    # An annotation only (no attribute), so it never shadows the real method in the MRO.
    _put_aside: Callable[[list[tuple[int, Msg, float, str]]], None]  # the aside mixin's

    def _cooldown(self, deferred: int) -> float:
        """How long a delivery deferred ``deferred`` times before waits this time."""
        # The exponent is capped: a float power past ~1,000 overflows, and 2**30 times
        # any cooldown is far past the maximum anyway.
        return min(self._defer_max_cooldown_s, self._defer_cooldown_s * 2.0 ** min(deferred, 30))

    def _defer(self, entries: list[tuple[int, Msg, float]]) -> None:
        """Defer ``(stream sequence, message, last keep-alive)`` each, in the background:
        the lease that decided it must not wait on the publishes."""
        if self._deferrals is None:
            self._deferrals = set()
        self._deferring += len(entries)
        task = asyncio.create_task(self._deferred(entries))
        self._deferrals.add(task)
        task.add_done_callback(self._deferrals.discard)

    async def _finish_deferring(self) -> None:
        """Wait for the deferrals under way (at close: they need the connection)."""
        if self._deferrals:
            await asyncio.gather(*self._deferrals, return_exceptions=True)

    async def _deferred(self, entries: list[tuple[int, Msg, float]]) -> None:
        try:
            decode = msgspec.msgpack.Decoder(Envelope).decode
            await self._move_out([(s, m, t, decode(m.data)) for s, m, t in entries])
        except Exception:
            # The originals are still leased here, unacked: they come back after ack_wait.
            logger.exception("deferring %d deliveries failed", len(entries))
        finally:
            self._deferring -= len(entries)
            self._wakeup.fire()  # room to fetch again, or messages set aside again

    async def _move_out(self, entries: list[_Deferral]) -> None:
        failed = await self._carry(
            [(seq, msg, envelope) for seq, msg, _, envelope in entries],
            subject=self.names.deferred_subject,
            kind="defer",
            wait_s=lambda envelope: self._cooldown(envelope.deferred),
            revise=_deferred_once_more,
        )
        if failed:
            touched = {seq: at for seq, _, at, _ in entries}
            self._put_aside([(seq, msg, touched[seq], e.subscription_id) for seq, msg, e in failed])
