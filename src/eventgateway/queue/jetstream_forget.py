"""Forgetting a deleted space in :class:`~eventgateway.queue.jetstream.JetStreamQueue`.

A space's history is one subject tree of the log stream, ``<prefix>.log.<h(space)>.>``,
and its dead letters one of the dead-letter stream, ``<prefix>.deadletters.<h(space)>.>``
(:class:`~eventgateway.queue.jetstream_wire.Names`): one purge by subject each forgets
them, however many there are. ``h`` is a 64-bit hash, so a collision would purge another
space's records too — the odds at which readers, comparing stored fields, waste a read.

What this cannot forget: unsettled deliveries in the work-queue stream (its subjects do
not name the space; deleting a space waits until there are none, see ``holdings``), and
the server's duplicate window, which keeps published message ids for ``dedup_window_s``
whatever is purged (nats-server issue 6782). A delivery settled after the purge appends
records without an ``Accepted`` one, which the fold never shows and the next forget
purges.
"""

from __future__ import annotations

import logging

import msgspec
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from eventgateway.errors import StoreError
from eventgateway.queue.jetstream_history import Record, fold
from eventgateway.queue.jetstream_setup import scan
from eventgateway.queue.jetstream_wire import Names, is_nats_error, store_error
from eventgateway.queue.log import DeliveryLog
from eventgateway.queue.log_views import SpaceHoldings

__all__ = ["JetStreamForgetMixin"]

logger = logging.getLogger(__name__)


async def _count(js: JetStreamContext, stream: str, subject: str) -> int:
    """How many messages of ``stream`` are on ``subject``, without reading them: the
    pending count of a consumer filtered on it (deleted at once)."""
    info = await js.add_consumer(
        stream,
        ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=subject,
            inactive_threshold=30.0,  # the server removes it if we vanish meanwhile
            mem_storage=True,
        ),
    )
    try:
        return info.num_pending or 0
    finally:
        try:
            await js.delete_consumer(stream, info.name)
        except Exception as exc:  # it expires on its own (inactive_threshold)
            logger.debug("could not delete the counting consumer %s: %s", info.name, exc)


class JetStreamForgetMixin(DeliveryLog):
    """``holdings`` and ``forget_space``; the queue provides the connection."""

    names: Names
    _js: JetStreamContext | None
    _scan_limit: int

    def _connected(self) -> JetStreamContext:
        if self._js is None:
            raise StoreError("the JetStream queue is closed")
        return self._js

    async def holdings(self, space: str) -> SpaceHoldings:
        """See :meth:`DeliveryLog.holdings`. Dead letters are counted in their stream;
        unsettled deliveries as the space's history shows them (at most ``scan_limit``
        records read): the work queue cannot be searched by space.

        Raises:
            StoreError: NATS did not answer, or the queue is closed.
        """
        js, names = self._connected(), self.names
        try:
            dead = await _count(js, names.deadletters_stream, names.deadletters_of(space))
            raw = await scan(js, names.log_stream, names.log_of(space), limit=self._scan_limit)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            raise store_error(f"count what space {space!r} holds", exc) from exc
        decoder = msgspec.msgpack.Decoder(Record)
        events = fold([(seq, subject, decoder.decode(data)) for seq, subject, data in raw])
        unsettled = sum(
            d.state == "pending"
            for e in events
            if e.accepted.space == space
            for d in e.deliveries.values()
        )
        return SpaceHoldings(dead_letters=dead, unsettled=unsettled)

    async def forget_space(self, space: str) -> None:
        """See :meth:`DeliveryLog.forget_space` and the module docstring.

        Raises:
            StoreError: NATS did not answer, or the queue is closed.
        """
        js, names = self._connected(), self.names
        try:
            await js.purge_stream(names.log_stream, subject=names.log_of(space))
            await js.purge_stream(names.deadletters_stream, subject=names.deadletters_of(space))
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            raise store_error(f"forget space {space!r}", exc) from exc
