"""Moving deferred deliveries of :class:`~eventgateway.queue.jetstream.JetStreamQueue`
back to the shared consumer once they are due (see :mod:`.jetstream_defer`).

Every instance that leases runs one mover (from its first ``lease`` to ``close``), on
the durable pull consumer ``<prefix>-deferred``, so the moving is shared like the
deliveries are. A fetched deferred message that is not due yet is ``nak``-ed with the
rest of its wait: the server holds it, and no memory here does. (That consumer's
delivery count means nothing: the attempts travel in the envelope.) A due one is
published to ``<prefix>.deliveries`` with ``due_at`` cleared, logged
(``Settled(carried=True)``: the delivery's current message is now the new one), then
acked. A crash between the publish and the ack moves it again after ``ack_wait``: the
publish's ``Nats-Msg-Id`` names the deferred message, so within the stream's duplicate
window the server stores it once and answers the sequence it stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.jetstream_history import Settled
from eventgateway.queue.jetstream_publish import Message, Publisher
from eventgateway.queue.jetstream_setup import ensure_consumer
from eventgateway.queue.jetstream_wire import (
    Envelope,
    Names,
    deferred_consumer_config,
    is_nats_error,
)

__all__ = ["JetStreamMoverMixin"]

logger = logging.getLogger(__name__)

MOVE_BATCH = 256  # deferred messages one fetch asks for
MOVE_WAIT_S = 1.0  # how long one fetch waits for a due one (the server's nak timers)
# A message due within this is moved now: a nak for less costs more than it saves.
DUE_SLACK_S = 0.05
# After a failed move: the server redelivers it then (bounded, never a hot loop).
RETRY_S = 5.0


class JetStreamMoverMixin:
    """The mover task; the queue provides the state."""

    names: Names
    _js: JetStreamContext | None
    _closed: bool
    _clock: Callable[[], float]
    _wakeup: Wakeup
    _publish_timeout_s: float
    _max_deliveries: int
    _mover: asyncio.Task[None] | None = None

    # An annotation only (no attribute), so it never shadows the real method in the MRO.
    _publishing: Callable[[], Publisher]  # the log mixin's

    async def _ensure_mover_consumer(self) -> None:
        """Create ``<prefix>-deferred`` (at ``open``), or apply its in-flight bound."""
        assert self._js is not None
        # Its bound follows the stream's, as the dispatch consumer's does by default: a
        # lower one would leave deferred deliveries past it waiting for the others.
        config = deferred_consumer_config(self.names, max_in_flight=self._max_deliveries)
        await ensure_consumer(self._js, self.names.deliveries_stream, config)

    def _start_moving(self) -> None:
        """Start the mover, unless it runs (called by every ``lease``)."""
        if self._mover is None and not self._closed:
            self._mover = asyncio.create_task(self._move_loop())

    async def _stop_moving(self) -> None:
        mover, self._mover = self._mover, None
        if mover is not None:
            mover.cancel()
            await asyncio.gather(mover, return_exceptions=True)

    async def _move_loop(self) -> None:
        names = self.names
        sub: JetStreamContext.PullSubscription | None = None
        try:
            while not self._closed:
                try:
                    if sub is None:
                        assert self._js is not None
                        sub = await self._js.pull_subscribe(
                            names.deferred_subject,
                            durable=names.deferred_consumer,
                            stream=names.deliveries_stream,
                        )
                    try:
                        msgs = await sub.fetch(MOVE_BATCH, timeout=MOVE_WAIT_S)
                    except TimeoutError:
                        continue  # nothing is due: the usual case
                    await self._move(msgs)
                except Exception as exc:
                    if is_nats_error(exc):
                        logger.warning("moving deferred deliveries failed, retrying: %s", exc)
                    else:  # a bug must not end the mover for good
                        logger.exception("moving deferred deliveries failed")
                    await asyncio.sleep(1.0)  # bounded: a server that is down is not hammered
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _move(self, msgs: list[Msg]) -> int:
        """Move the due ones of ``msgs`` (fetched from ``<prefix>-deferred``) back to the
        deliveries, and hand the others back until they are due; how many it moved."""
        names, publisher, timeout_s = self.names, self._publishing(), self._publish_timeout_s
        decode = msgspec.msgpack.Decoder(Envelope).decode
        wall = time.time()
        due: list[tuple[Msg, Envelope]] = []
        for msg in msgs:
            try:
                envelope = decode(msg.data)
            except msgspec.DecodeError as exc:
                logger.error("dropping unreadable deferred message: %s", exc)
                await msg.term()
                continue
            wait_s = (envelope.due_at or 0.0) - wall
            if wait_s > DUE_SLACK_S:
                await msg.nak(delay=wait_s)
                continue
            due.append((msg, envelope))
        if not due:
            return 0
        batch: list[Message] = [
            (
                names.deliveries_subject,
                msgspec.msgpack.encode(msgspec.structs.replace(envelope, due_at=None)),
                {"Nats-Msg-Id": f"undefer-{msg.metadata.sequence.stream}"},
            )
            for msg, envelope in due
        ]
        acks = await publisher.publish(batch, timeout_s)
        now = self._clock()
        moved: list[Msg] = []
        records: list[Message] = []
        failed: list[BaseException] = []
        for (msg, envelope), ack in zip(due, acks, strict=True):
            if isinstance(ack, BaseException):
                failed.append(ack)
                await msg.nak(delay=RETRY_S)
                continue
            event = decode_event(envelope.event)
            delivery_id = envelope.delivery_id or str(msg.metadata.sequence.stream)
            record = Settled(now, delivery_id, "pending", seq=ack.seq, carried=True)
            subject = names.log_subject(envelope.space, event.source, event.id)
            records.append((subject, msgspec.msgpack.encode(record), None))
            moved.append(msg)
        if failed:
            logger.warning(
                "could not move %d deferred deliveries back (again in %.0f s): %s",
                len(failed),
                RETRY_S,
                failed[0],
            )
        if not moved:
            return 0
        self._wakeup.fire()
        logged = await publisher.publish(records, timeout_s)
        done: list[Msg] = []
        lost: list[BaseException] = []
        for msg, outcome in zip(moved, logged, strict=True):
            if isinstance(outcome, BaseException):
                # Moved again later (the publish is deduplicated) and logged then: the
                # log must not name the deferred message once it is gone (reconcile).
                lost.append(outcome)
                await msg.nak(delay=RETRY_S)
            else:
                done.append(msg)
        if lost:
            logger.warning(
                "delivery log records of %d moves lost (moved again in %.0f s): %s",
                len(lost),
                RETRY_S,
                lost[0],
            )
        acked = await asyncio.gather(
            *(publisher.confirm(msg.reply, b"", timeout_s) for msg in done),
            return_exceptions=True,
        )
        for outcome in acked:
            if isinstance(outcome, BaseException):
                # It comes back after ack_wait and is moved again, deduplicated.
                logger.warning("could not ack a moved deferred delivery: %s", outcome)
        return len(moved)
