"""Deferring a blocked subscription's overflow out of the shared consumer of
:class:`~eventgateway.queue.jetstream.JetStreamQueue`.

A message fetched from ``<prefix>-dispatch`` is leased to this instance until it is
acked, whether a lease took it or it waits parked or set aside (:mod:`.jetstream_aside`),
and it counts against the consumer's ``max_ack_pending`` all that while. A hung
subscription with a steady inflow would fill this instance's set-aside messages (memory)
and then stall the fetch for every subscription. So past
:data:`~eventgateway.queue.jetstream_aside.ASIDE_PER_SUBSCRIPTION` set aside, its
unordered messages are deferred: a copy of the envelope is published to
``<prefix>.deferred`` in the same stream, with the attempts made so far
(``attempts_before``), when it is due (``due_at``, after a cooldown that doubles with
every deferral of the delivery: :meth:`JetStreamDeferMixin._cooldown`) and its delivery
id; then the original is acked. The mover (:mod:`.jetstream_mover`) puts the copy back
on ``<prefix>.deliveries`` once it is due.

The copy's ``Nats-Msg-Id`` names the delivery and the original's stream sequence, so a
deferral repeated after a failure (the original came back) is stored once within the
stream's duplicate window. Its log record (``Settled(carried=True)``) moves the
delivery to the copy's sequence keeping its attempts, so reconcile finds it in the
stream. If the copy cannot be stored (a full stream, NATS down) the original is set
aside again, still leased here: nothing is lost and no attempt is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg

from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.jetstream_history import Settled
from eventgateway.queue.jetstream_publish import Message, Publisher
from eventgateway.queue.jetstream_wire import Envelope, Names

__all__ = ["COOLDOWN_S", "MAX_COOLDOWN_S", "JetStreamDeferMixin"]

logger = logging.getLogger(__name__)

# A deferred delivery's first wait. Short enough that a subscription stuck for a moment
# is not kept waiting long; doubled per deferral, since one still blocked after several
# is likely hung and each round trip costs two publishes and two acks.
COOLDOWN_S = 15.0
MAX_COOLDOWN_S = 600.0

_Deferral = tuple[int, Msg, float, Envelope]  # stream sequence, message, keep-alive, body


class JetStreamDeferMixin:
    """Deferring messages taken out of ``_parked``; the queue provides the state."""

    names: Names
    _clock: Callable[[], float]
    _wakeup: Wakeup
    _publish_timeout_s: float
    # Attributes, so tests can make them tiny.
    _defer_cooldown_s = COOLDOWN_S
    _defer_max_cooldown_s = MAX_COOLDOWN_S
    _deferring = 0  # messages taken out of ``_parked`` whose deferral has not ended
    _deferrals: set[asyncio.Task[None]] | None = None

    # Annotations only (no attribute), so they never shadow the real methods in the MRO.
    _publishing: Callable[[], Publisher]  # the log mixin's
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
        names, publisher, timeout_s = self.names, self._publishing(), self._publish_timeout_s
        wall, now = time.time(), self._clock()
        copies: list[Message] = []
        for seq, msg, _, envelope in entries:
            delivery_id = envelope.delivery_id or str(seq)
            copy = msgspec.structs.replace(
                envelope,
                delivery_id=delivery_id,
                # Not the current delivery: a set-aside message was not attempted.
                attempts_before=envelope.attempts_before + msg.metadata.num_delivered - 1,
                due_at=wall + self._cooldown(envelope.deferred),
                deferred=envelope.deferred + 1,
            )
            header = {"Nats-Msg-Id": f"defer-{delivery_id}-{seq}"}
            copies.append((names.deferred_subject, msgspec.msgpack.encode(copy), header))
        acks = await publisher.publish(copies, timeout_s)
        stored: list[tuple[_Deferral, int]] = []
        failed: list[tuple[int, Msg, float, str]] = []
        for entry, ack in zip(entries, acks, strict=True):
            if isinstance(ack, BaseException):
                failed.append((entry[0], entry[1], entry[2], entry[3].subscription_id))
            else:
                stored.append((entry, ack.seq))
        if failed:
            error = next(a for a in acks if isinstance(a, BaseException))
            logger.warning(
                "could not defer %d deliveries (kept set aside here): %s", len(failed), error
            )
            self._put_aside(failed)
        if not stored:
            return
        # Logged before the original's ack: reconcile must never find the delivery's
        # message gone while the log still names the original.
        records: list[Message] = []
        for (seq, _, _, envelope), copy_seq in stored:
            event = decode_event(envelope.event)
            record = Settled(
                now,
                envelope.delivery_id or str(seq),
                "pending",
                due_at=now + self._cooldown(envelope.deferred),
                seq=copy_seq,
                carried=True,
            )
            subject = names.log_subject(envelope.space, event.source, event.id)
            records.append((subject, msgspec.msgpack.encode(record), None))
        logged = await publisher.publish(records, timeout_s)
        lost = [outcome for outcome in logged if isinstance(outcome, BaseException)]
        if lost:
            # Only the log lags: the mover's record of the move brings it up to date.
            logger.warning("delivery log records of %d deferrals lost: %s", len(lost), lost[0])
        outcomes = await asyncio.gather(
            *(publisher.confirm(msg.reply, b"", timeout_s) for (_, msg, _, _), _ in stored),
            return_exceptions=True,
        )
        for ((seq, _, _, _), _), outcome in zip(stored, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Its copy is stored: if the original comes back to a subscription with
                # room it is delivered twice (deferred again, the copy is deduplicated).
                logger.warning("could not ack deferred delivery message %d: %s", seq, outcome)
