"""Settling leased deliveries of :class:`~eventgateway.queue.jetstream.JetStreamQueue`:
ack, ``nak(delay)``, dead-letter, each followed by its record in the delivery log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from nats.aio.msg import Msg

from eventgateway.queue.base import AttemptRecord, Delivery
from eventgateway.queue.jetstream_carry import JetStreamCarryMixin
from eventgateway.queue.jetstream_history import Record, Settled
from eventgateway.queue.jetstream_recount import JetStreamRecountMixin
from eventgateway.queue.jetstream_wire import (
    DeadEnvelope,
    Envelope,
    is_nats_error,
    store_error,
)
from eventgateway.queue.log_views import LoggedAttempt

__all__ = ["JetStreamSettleMixin"]

logger = logging.getLogger(__name__)


def _logged(attempt: AttemptRecord | None) -> LoggedAttempt | None:
    if attempt is None:
        return None
    return (
        attempt.started_at,
        attempt.duration_s * 1000.0,
        attempt.outcome,
        attempt.status,
        attempt.error,
    )


def _seq(msg: Msg) -> int:
    """The message's stream sequence: which message of a (redriven) delivery was settled."""
    return msg.metadata.sequence.stream


def _envelope(msg: Msg) -> Envelope:
    return msgspec.msgpack.decode(msg.data, type=Envelope)


class JetStreamSettleMixin(JetStreamRecountMixin, JetStreamCarryMixin):
    """``ack``, ``retry_later`` and ``dead_letter``; the queue provides the state."""

    _leased: dict[str, Msg]

    def _settling(self, delivery: Delivery) -> tuple[Msg, Envelope, int] | None:
        """Take a leased delivery out: its message, body and the number of the attempt
        just made, as the retry policy counted it (recounted: :mod:`.jetstream_recount`)."""
        msg = self._leased.pop(delivery.id, None)
        if msg is None:
            self._forget_recount(delivery)
            return None
        envelope = _envelope(msg)
        return msg, envelope, self._attempt_number(delivery, msg, envelope)

    # Annotations only (no attribute), so they never shadow the real methods in the MRO.
    _refresh: Callable[[], Awaitable[None]]  # the queue's
    _release: Callable[[Msg], Awaitable[None]]  # the ordering mixin's
    _append: Callable[[str, Record], Awaitable[None]]  # the log mixin's

    async def release(self, deliveries: Sequence[Delivery], delay_s: float = 0.0) -> None:
        """Hand each back unattempted, due again after ``delay_s`` rather than after
        ``ack_wait``: carried to a new message with its attempts (:mod:`.jetstream_carry`),
        or, if it is ordered, ``nak``-ed, which the server counts as an attempt
        (``docs/cluster.md``; a :meth:`recount` before a dead letter forgives up to
        :data:`~.jetstream_recount.UNLOGGED_ALLOWANCE` of those). Nothing is logged of
        it: it was no attempt.
        """
        msgs: list[tuple[int, Msg]] = []
        for delivery in deliveries:
            msg = self._leased.pop(delivery.id, None)
            self._forget_recount(delivery)
            if msg is not None:
                msgs.append((_seq(msg), msg))
        if msgs:
            await self._hand_back(msgs, delay_s)

    async def ack(self, delivery: Delivery, attempt: AttemptRecord) -> None:
        """Acknowledge the delivery (confirmed by the server); a settled one is left alone.

        Raises:
            StoreError: the server did not confirm; the delivery comes back after its lease.
        """
        settling = self._settling(delivery)
        if settling is not None:
            msg, envelope, number = settling
            await self._ack(msg)
            settled = Settled(
                self._clock(),
                delivery.id,
                "delivered",
                _logged(attempt),
                seq=_seq(msg),
                carried=envelope.carried,
                number=number,
            )
            await self._record(delivery, settled)

    async def retry_later(self, delivery: Delivery, delay_s: float, attempt: AttemptRecord) -> None:
        """``nak`` the delivery with ``delay_s``: the server redelivers it after the delay."""
        settling = self._settling(delivery)
        if settling is None:
            return
        msg, envelope, number = settling
        try:
            await msg.nak(delay=delay_s)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            raise store_error(f"retry delivery {delivery.id} later", exc) from exc
        now = self._clock()
        settled = Settled(
            now,
            delivery.id,
            "pending",
            _logged(attempt),
            due_at=now + delay_s,
            seq=_seq(msg),
            # A moved message's settle may be logged before the move itself: without
            # this the fold would take it for a redrive and count attempts from zero.
            carried=envelope.carried,
            number=number,
        )
        await self._record(delivery, settled)

    async def dead_letter(
        self, delivery: Delivery, reason: str, attempt: AttemptRecord | None
    ) -> None:
        """Publish the delivery to the dead-letter stream, then acknowledge it.

        Raises:
            StoreError: either step failed; the delivery comes back after its lease.
        """
        settling = self._settling(delivery)
        if settling is None or self._js is None:
            return
        msg, envelope, number = settling
        now = self._clock()
        dead = DeadEnvelope(
            delivery=envelope,
            delivery_id=delivery.id,
            reason=reason,
            attempts=number,
            dead_at=now,
            last_status=attempt.status if attempt else None,
            last_error=attempt.error if attempt else "",
            response_excerpt=attempt.response_excerpt if attempt else "",
            last_attempt=_logged(attempt),
        )
        num = msg.metadata.num_delivered
        try:
            await self._js.publish(
                self.names.deadletter_subject(delivery.space, delivery.id, delivery.event.id),
                msgspec.msgpack.encode(dead),
                # The same id twice (a retried dead letter) is stored once.
                headers={"Nats-Msg-Id": f"dead-{delivery.id}-{msg.metadata.sequence.stream}-{num}"},
            )
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            raise store_error(f"dead-letter delivery {delivery.id}", exc) from exc
        await self._ack(msg)
        settled = Settled(
            now,
            delivery.id,
            "dead",
            _logged(attempt),
            reason=reason,
            seq=_seq(msg),
            carried=envelope.carried,
            number=number if attempt is not None else None,
        )
        await self._record(delivery, settled)

    async def _ack(self, msg: Msg) -> None:
        try:
            # msg.ack_sync(), answered on the queue's reply subscription: nats-py's request
            # per ack (a random token, a wait_for task) cost ~15 % of the worker's CPU.
            assert msg.reply, "a JetStream message has a reply subject"
            await self._publishing().confirm(msg.reply, b"", self._publish_timeout_s)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            raise store_error("acknowledge a delivery", exc) from exc
        await self._release(msg)
        await self._refresh()

    async def _record(self, delivery: Delivery, record: Settled) -> None:
        # After the queue's own step: a lost record only makes the log lag (the delivery
        # itself is settled); failing the settle for it would redeliver a delivered event.
        subject = self.names.log_subject(delivery.space, delivery.event.source, delivery.event.id)
        try:
            await self._append(subject, record)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            logger.warning(
                "delivery log record lost for event %s delivery %s: %s",
                delivery.event.id,
                delivery.id,
                exc,
            )
