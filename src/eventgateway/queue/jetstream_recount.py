"""Recounting a redelivered message's attempts from the delivery log, where it matters.

A lease numbers a delivery's attempt from the server's delivery count
(``num_delivered``), which every redelivery raises, attempted or not: the messages a
``kill -9``-ed (or OOM-killed) instance had fetched come back after ``ack_wait``
counted, and so do those whose lease ran out for another reason (a keep-alive too late,
NATS unreachable for a while) and ordered ones handed back with ``nak``. With
``maxAttempts: 2`` one such crash dead-lettered deliveries after one real call (QA: 90
of 300). SQLite and memory count settled attempts only.

Reading the log on every redelivered lease would cost every retry a read (a retry is a
``nak``, so a redelivery too). So the count is corrected only where it changes an
outcome: the dispatcher asks :meth:`JetStreamRecountMixin.recount` right before it would
dead-letter a delivery for running out of attempts. The attempts proven are the
envelope's ``attempts_before`` (carried from earlier messages), plus the ``Settled``
records with an attempt that name the delivery and this message's stream sequence, plus
the redeliveries with no attempt logged beyond :data:`UNLOGGED_ALLOWANCE` (the poison
guard: an instance that dies *during* an attempt never logs it). Where the log cannot
tell (the read failed, stopped at ``scan_limit``, or the history no longer names the
delivery: the byte-bounded log dropped it) the server's count stands: it is an upper
bound on the attempts made, so falling back never retries more than the policy allows.

The corrected count is kept for the settle that follows, so the log numbers that attempt
and the dead letter counts its attempts as the retry policy did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream_history import Accepted, Record, Replayed, Settled
from eventgateway.queue.jetstream_setup import scan_from
from eventgateway.queue.jetstream_wire import Envelope, Names, is_nats_error

__all__ = [
    "UNLOGGED_ALLOWANCE",
    "JetStreamRecountMixin",
    "attempts_before",
    "logged_attempts",
]

logger = logging.getLogger(__name__)

# Redeliveries of one message with no attempt logged that cost nothing: a crash or a
# lease that ran out on the way. Two ride out a crash and a second mishap (a NATS outage
# past ack_wait, a second crash during a rolling restart); from the third on each counts,
# so a message that kills every instance mid-attempt still runs into its policy's
# maxAttempts (two attempts late), and a settle whose record was lost is undercounted by
# one at most.
UNLOGGED_ALLOWANCE = 2


def logged_attempts(records: Iterable[Record], delivery_id: str, seq: int) -> int | None:
    """The attempts logged on message ``seq`` of delivery ``delivery_id``.

    Args:
        records: one event's history, in stream order.
        delivery_id: the delivery's id.
        seq: the stream sequence of the delivery's current message.

    Returns:
        How many ``Settled`` records with an attempt (reconcile's excepted: they add
        none) name the delivery and ``seq``; ``None`` when no ``Accepted`` or
        ``Replayed`` record names the delivery (its start was dropped from the log).
    """
    named = False
    logged = 0
    for record in records:
        if isinstance(record, Accepted | Replayed):
            named = named or any(d[0] == delivery_id for d in record.deliveries)
        elif (
            isinstance(record, Settled)
            and record.delivery_id == delivery_id
            and record.seq == seq
            and record.attempt is not None
            and not record.reconciled
        ):
            logged += 1
    return logged if named else None


def attempts_before(envelope: Envelope, num_delivered: int, logged: int | None) -> int:
    """The attempts a delivery made before its current delivery of this message.

    Args:
        envelope: the message's body (``attempts_before``: what earlier messages made).
        num_delivered: the server's delivery count of the message, this delivery included.
        logged: the attempts logged on this message (:func:`logged_attempts`); ``None``
            when the log could not tell, and the server's count is used.

    Returns:
        ``attempts_before`` plus the logged attempts, plus the earlier deliveries with
        no attempt logged beyond :data:`UNLOGGED_ALLOWANCE`; never more than the
        server's count.
    """
    earlier = max(0, num_delivered - 1)
    if logged is None:
        return envelope.attempts_before + earlier
    logged = min(logged, earlier)  # a record logged twice cannot make more
    unlogged = earlier - logged
    return envelope.attempts_before + logged + max(0, unlogged - UNLOGGED_ALLOWANCE)


class JetStreamRecountMixin:
    """:meth:`recount` for the JetStream queue; the queue provides the state."""

    names: Names
    _js: JetStreamContext | None
    _scan_limit: int
    _leased: dict[str, Msg]
    # Delivery id -> (the leased message recounted, attempts made before it). Set by
    # recount, taken by the settle or hand-back that follows, so it holds no more than
    # ``_leased`` does; the message tells a later lease of the same delivery apart.
    _recounted: dict[str, tuple[Msg, int]] | None = None

    async def recount(self, delivery: Delivery) -> int:
        """The attempts made before this one, as the delivery log proves them.

        A first delivery of its message (``num_delivered == 1``) costs nothing: the
        lease's count is exact. A redelivered one costs one read of its event's history
        (an ephemeral consumer); the result is kept for the delivery's next settle
        (``retry_later``, ``dead_letter``), which numbers the attempt by it.

        Returns:
            At most ``delivery.attempt``; exactly that when the log cannot tell (history
            gone or cut short, NATS unreachable: logged at info) or the delivery is not
            leased here.
        """
        msg = self._leased.get(delivery.id)
        if msg is None or msg.metadata.num_delivered <= 1 or not msg.data:
            return delivery.attempt
        envelope = msgspec.msgpack.decode(msg.data, type=Envelope)
        seq = msg.metadata.sequence.stream
        subject = self.names.log_subject(delivery.space, delivery.event.source, delivery.event.id)
        history = await self._history_for_recount(subject, delivery)
        if history is None:
            return delivery.attempt
        logged = logged_attempts(history, delivery.id, seq)
        if logged is None:
            return delivery.attempt
        counted = min(
            delivery.attempt, attempts_before(envelope, msg.metadata.num_delivered, logged)
        )
        if self._recounted is None:
            self._recounted = {}
        self._recounted[delivery.id] = (msg, counted)
        return counted

    def _attempt_number(self, delivery: Delivery, msg: Msg, envelope: Envelope) -> int:
        """The number of the attempt just made on ``msg``, as the retry policy counted it
        (recounted, if it was); forgets the recount."""
        recounted = self._recounted.pop(delivery.id, None) if self._recounted else None
        if recounted is not None and recounted[0] is msg:
            return recounted[1] + 1
        return envelope.attempts_before + msg.metadata.num_delivered

    def _forget_recount(self, delivery: Delivery) -> None:
        """Drop a recount of ``delivery``: handed back unattempted."""
        if self._recounted:
            self._recounted.pop(delivery.id, None)

    async def _history_for_recount(self, subject: str, delivery: Delivery) -> list[Record] | None:
        """One event's history; ``None`` if it cannot tell (unreadable, cut short)."""
        js = self._js
        if js is None:
            return None
        try:
            raw, truncated = await scan_from(
                js, self.names.log_stream, subject, limit=self._scan_limit
            )
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            logger.info(
                "delivery %s of event %s: delivery log unreadable, its attempts stay "
                "counted as the server counts them: %s",
                delivery.id,
                delivery.event.id,
                exc,
            )
            return None
        if truncated:
            return None
        decode = msgspec.msgpack.Decoder(Record).decode
        try:
            return [decode(data) for _, _, data in raw]
        except msgspec.DecodeError as exc:  # a newer build's record: the server's count
            logger.info(
                "delivery %s of event %s: delivery log record unreadable, its attempts "
                "stay counted as the server counts them: %s",
                delivery.id,
                delivery.event.id,
                exc,
            )
            return None
