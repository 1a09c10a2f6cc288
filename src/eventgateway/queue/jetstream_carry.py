"""Carrying a fetched delivery over to a new message of the stream, its attempts kept.

The attempt number of a JetStream delivery is the server's delivery count of its message
(plus ``attempts_before``, see :class:`~eventgateway.queue.jetstream_wire.Envelope`), and
the server raises that count for every redelivery, a ``nak``'s too. So a message handed
back with ``nak`` costs an attempt that never happened: an instance stopping gracefully
gave back what it had fetched, and with ``maxAttempts: 2`` most of a slow function's
backlog was dead-lettered after one real attempt (QA: 162 of 180).

Carrying publishes a copy of the envelope with the attempts made so far in
``attempts_before`` (the current delivery not counted: it was fetched, not attempted),
logs the move (``Settled(carried=True)``: the same delivery, now on the copy's message),
then acks the original. Three users:

* a deferral (:mod:`.jetstream_defer`) carries a blocked subscription's overflow to
  ``<prefix>.deferred``, due after a cooldown;
* a hand-back (:meth:`JetStreamCarryMixin._hand_back`: ``release``, and the fetched
  messages given back at ``close`` or when nobody leases) carries unordered deliveries
  to ``<prefix>.deliveries`` when due now, or to ``<prefix>.deferred`` with their delay
  (the mover puts them back). Ordered ones are still ``nak``-ed: a copy would go behind
  its key's later events. So is anything a copy could not be stored for;
* sharing (:mod:`.jetstream_share`) carries a blocked backlog to ``<prefix>.deliveries``
  for instances that have room for it.

At a nearly full stream the copies go in rounds: each round's acks free the room the
next round's copies need, so the queue's bound stays hard.

Each copy's ``Nats-Msg-Id`` names the delivery and the original's stream sequence, so a
carry repeated after a failure (the original came back) is stored once within the
stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.jetstream_history import Settled
from eventgateway.queue.jetstream_publish import Message, Publisher
from eventgateway.queue.jetstream_wire import Envelope, Names, is_nats_error, is_stream_full

__all__ = ["Carried", "JetStreamCarryMixin"]

logger = logging.getLogger(__name__)

Carried = tuple[int, Msg, Envelope]  # the original's stream sequence, message, body

# A hand-back due within this goes straight to the deliveries: the mover's round trip
# would cost more than the wait saves.
DUE_NOW_S = 0.05
# Messages one hand-back carries, or reads back (a direct get each), at once.
BATCH = 256


class _Plan(NamedTuple):
    """Where and how a carry makes its copies (see :meth:`JetStreamCarryMixin._carry`)."""

    subject: str
    kind: str  # starts each copy's Nats-Msg-Id
    wait_s: Callable[[Envelope], float]
    revise: Callable[[Envelope], Envelope]


def _handed_back(envelope: Envelope) -> Envelope:
    return msgspec.structs.replace(envelope, handed_back=envelope.handed_back + 1)


class JetStreamCarryMixin:
    """Carrying deliveries to new messages; the queue provides the state."""

    names: Names
    _js: JetStreamContext | None
    _clock: Callable[[], float]
    _wakeup: Wakeup
    _publish_timeout_s: float

    # An annotation only (no attribute), so it never shadows the real method in the MRO.
    _publishing: Callable[[], Publisher]  # the log mixin's

    async def _carry(
        self,
        entries: list[Carried],
        *,
        subject: str,
        kind: str,
        wait_s: Callable[[Envelope], float],
        revise: Callable[[Envelope], Envelope],
    ) -> list[Carried]:
        """Carry each entry to a copy on ``subject``, due ``wait_s(envelope)`` from now;
        ``revise`` sets what the kind of carry counts (deferrals, hand-backs, shares).

        Returns the entries whose copy was not stored: still leased here, unacked.
        """
        plan = _Plan(subject, kind, wait_s, revise)
        failed, error = await self._carry_once(entries, plan)
        # At a full stream a copy needs the room its original's ack frees: those carried
        # freed as much again, so the rest go in rounds (the queue's bound stays hard).
        while failed and len(failed) < len(entries) and error and is_stream_full(error):
            entries = failed
            failed, error = await self._carry_once(entries, plan)
        if failed:
            logger.warning("could not carry %d deliveries to new messages: %s", len(failed), error)
        return failed

    async def _carry_once(
        self, entries: list[Carried], plan: _Plan
    ) -> tuple[list[Carried], BaseException | None]:
        """One round of :meth:`_carry`: the entries not carried, and the first error."""
        subject, kind, wait_s, revise = plan
        names, publisher, timeout_s = self.names, self._publishing(), self._publish_timeout_s
        wall, now = time.time(), self._clock()
        waits = [max(0.0, wait_s(envelope)) for _, _, envelope in entries]
        copies: list[Message] = []
        for (seq, msg, envelope), wait in zip(entries, waits, strict=True):
            delivery_id = envelope.delivery_id or str(seq)
            copy = msgspec.structs.replace(
                revise(envelope),
                delivery_id=delivery_id,
                # Not the current delivery: it was fetched, not attempted.
                attempts_before=envelope.attempts_before + msg.metadata.num_delivered - 1,
                due_at=wall + wait if wait else None,
            )
            header = {"Nats-Msg-Id": f"{kind}-{delivery_id}-{seq}"}
            copies.append((subject, msgspec.msgpack.encode(copy), header))
        acks = await publisher.publish(copies, timeout_s)
        stored: list[tuple[Carried, float, int]] = []
        failed: list[Carried] = []
        for entry, wait, ack in zip(entries, waits, acks, strict=True):
            if isinstance(ack, BaseException):
                failed.append(entry)
            else:
                stored.append((entry, wait, ack.seq))
        error = next((a for a in acks if isinstance(a, BaseException)), None)
        if not stored:
            return failed, error
        # Logged before the original's ack: reconcile must never find the delivery's
        # message gone while the log still names the original.
        records: list[Message] = []
        for (seq, _, envelope), wait, copy_seq in stored:
            event = decode_event(envelope.event)
            record = Settled(
                now,
                envelope.delivery_id or str(seq),
                "pending",
                due_at=now + wait if wait else None,
                seq=copy_seq,
                carried=True,
            )
            log_subject = names.log_subject(envelope.space, event.source, event.id)
            records.append((log_subject, msgspec.msgpack.encode(record), None))
        logged = await publisher.publish(records, timeout_s)
        lost = [outcome for outcome in logged if isinstance(outcome, BaseException)]
        if lost:
            # Only the log lags: a settle of the copy (carried too) brings it up to date.
            logger.warning("log records of %d carried deliveries lost: %s", len(lost), lost[0])
        outcomes = await asyncio.gather(
            *(publisher.confirm(msg.reply, b"", timeout_s) for (_, msg, _), _, _ in stored),
            return_exceptions=True,
        )
        for ((seq, _, _), _, _), outcome in zip(stored, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Its copy is stored: if the original comes back it is delivered twice
                # (carried again, the copy is deduplicated).
                logger.warning("could not ack carried delivery message %d: %s", seq, outcome)
        self._wakeup.fire()
        return failed, error

    async def _hand_back(self, msgs: list[tuple[int, Msg]], delay_s: float = 0.0) -> None:
        """Give fetched messages (``(stream sequence, message)``) back to the stream, due
        again after ``delay_s``: unordered ones carried with their attempts, the others
        (and any that could not be carried) ``nak``-ed, which the server counts."""
        names = self.names
        unordered: list[Carried] = []
        naked: list[Msg] = []
        decode = msgspec.msgpack.Decoder(Envelope).decode
        for seq, msg in msgs:
            if msg.subject.startswith(names.ordered_prefix) or not msg.data:
                naked.append(msg)
                continue
            try:
                unordered.append((seq, msg, decode(msg.data)))
            except msgspec.DecodeError:
                naked.append(msg)
        due_now = delay_s < DUE_NOW_S
        subject = names.deliveries_subject if due_now else names.deferred_subject
        for start in range(0, len(unordered), BATCH):
            batch = unordered[start : start + BATCH]
            try:
                failed = await self._carry(
                    batch,
                    subject=subject,
                    kind="handback",
                    wait_s=lambda _: 0.0 if due_now else delay_s,
                    revise=_handed_back,
                )
            except Exception as exc:
                if not is_nats_error(exc):
                    raise
                failed = batch
            naked.extend(msg for _, msg, _ in failed)
            if len(failed) == len(batch):
                # NATS unreachable or the stream full: no more waiting on publishes.
                naked.extend(msg for _, msg, _ in unordered[start + BATCH :])
                break
        for msg in naked:
            try:
                await msg.nak(delay=delay_s or None)
            except Exception as exc:
                if not is_nats_error(exc):
                    raise
                # The rest come back when their ack_wait runs out.
                logger.warning("could not hand back fetched deliveries: %s", exc)
                return

    async def _read_back_data(self, seqs: list[int], msgs: dict[int, Msg]) -> None:
        """Fill in the data of set-aside messages (dropped to save memory), by stream
        sequence; one that cannot be read keeps none (and is ``nak``-ed)."""
        js, stream = self._js, self.names.deliveries_stream
        if js is None:
            return
        for start in range(0, len(seqs), BATCH):
            batch = seqs[start : start + BATCH]
            got = await asyncio.gather(
                *(js.get_msg(stream, seq=seq) for seq in batch), return_exceptions=True
            )
            for seq, stored in zip(batch, got, strict=True):
                if not isinstance(stored, BaseException):
                    msgs[seq].data = stored.data or b""
            if all(isinstance(stored, BaseException) for stored in got):
                return  # NATS is likely unreachable: the rest are nak-ed as they are
