"""Leasing for :class:`~eventgateway.queue.jetstream.JetStreamQueue`: one background pull
request at a time, fetched messages parked (and kept alive) until a ``lease`` takes them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

import msgspec
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream_wire import Envelope, is_nats_error

__all__ = ["JetStreamLeaseMixin"]

logger = logging.getLogger(__name__)


class JetStreamLeaseMixin:
    """``lease`` and the parked messages; the queue provides the state."""

    _closed: bool
    _wakeup: Wakeup
    _sub: JetStreamContext.PullSubscription | None
    # Fetched but not handed out (e.g. their subscription is excluded right now):
    # stream sequence -> (message, monotonic time of the last keep-alive).
    _parked: dict[int, tuple[Msg, float]]
    _max_parked: int
    _leased: dict[str, Msg]
    _fetcher: asyncio.Task[None] | None
    _lease_s: float
    _fetch_wait_s: float

    async def lease(self, max_count: int, *, exclude: Collection[str] = ()) -> list[Delivery]:
        """Wait for deliveries and lease up to ``max_count``, in stream order.

        One pull request at a time runs in the background and parks what it fetched, so
        a cancelled ``lease`` loses nothing: the next call finds the messages parked.
        ``exclude`` is read afresh each time the queue looks again.

        Raises:
            ValueError: ``max_count`` is less than 1.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        while not self._closed:
            token = self._wakeup.token()
            batch = self._take(max_count, frozenset(exclude))
            if batch:
                return batch
            room = self._max_parked - len(self._parked)
            if room > 0 and (self._fetcher is None or self._fetcher.done()):
                self._fetcher = asyncio.create_task(self._fetch(min(max_count, room)))
            timeout = self._lease_s / 3 if self._parked else None
            try:
                await asyncio.wait_for(token.wait(), timeout)
            except TimeoutError:
                await self._keep_parked_alive()
        return []

    async def _fetch(self, count: int) -> None:
        assert self._sub is not None
        try:
            msgs = await self._sub.fetch(count, timeout=self._fetch_wait_s)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            msgs = []
            if not isinstance(exc, TimeoutError):  # no messages came: the usual case
                logger.warning("fetching deliveries failed, retrying: %s", exc)
                # Bounded pause so a server that is down is not asked in a hot loop.
                await asyncio.sleep(min(self._fetch_wait_s, 1.0))
        now = time.monotonic()
        for msg in msgs:
            self._parked[msg.metadata.sequence.stream] = (msg, now)
        self._wakeup.fire()

    def _take(self, max_count: int, exclude: frozenset[str]) -> list[Delivery]:
        taken: list[Delivery] = []
        for seq in sorted(self._parked):
            if len(taken) >= max_count:
                break
            msg, _ = self._parked[seq]
            envelope = msgspec.msgpack.decode(msg.data, type=Envelope)
            if envelope.subscription_id in exclude:
                continue
            del self._parked[seq]
            delivery = Delivery(
                id=envelope.delivery_id or str(seq),
                space=envelope.space,
                subscription_id=envelope.subscription_id,
                function_id=envelope.function_id,
                event=decode_event(envelope.event),
                accepted_at=envelope.accepted_at,
                attempt=msg.metadata.num_delivered - 1,
                partition_key=envelope.partition_key,
                auth_request=envelope.auth_request,
            )
            self._leased[delivery.id] = msg
            taken.append(delivery)
        return taken

    async def _keep_parked_alive(self) -> None:
        now = time.monotonic()
        for seq, (msg, touched) in list(self._parked.items()):
            if now - touched >= self._lease_s / 3:
                try:
                    await msg.in_progress()
                except Exception as exc:
                    if not is_nats_error(exc):
                        raise
                    return  # disconnected: they come back after ack_wait anyway
                self._parked[seq] = (msg, now)
