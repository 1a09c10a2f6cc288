"""Leasing for :class:`~eventgateway.queue.jetstream.JetStreamQueue`: one background pull
request at a time, fetched messages parked (and kept alive) until a ``lease`` takes them.

The pull is our own request on our own inbox rather than nats-py's ``fetch``: ``fetch(n)``
returns only when ``n`` messages came or the request expired, so at low rates a delivery
could sit in the client for up to ``fetch_wait_s`` (seconds) before a ``lease`` saw it.
Here each message is parked, and waiting leases woken, the moment it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Collection

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.base import Delivery
from eventgateway.queue.jetstream_wire import Envelope, Names, is_nats_error

__all__ = ["JetStreamLeaseMixin"]

logger = logging.getLogger(__name__)


class JetStreamLeaseMixin:
    """``lease`` and the parked messages; the queue provides the state."""

    names: Names
    _nc: Client | None
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
    # The open pull request: our inbox, how many messages it may still bring, its end.
    _inbox: str | None = None
    _owed: int = 0
    _pull_ended: asyncio.Event | None = None
    _pull_error: str | None = None

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
        try:
            # First what is there now (no_wait ends at once); failing that, wait for one
            # message. A request that only ends at expiry would leave this instance
            # collecting messages after its lease returned, which other instances need.
            if await self._pull(count, {"batch": count, "no_wait": True}, 2.0) == 0:
                expires = int(self._fetch_wait_s * 1e9)
                await self._pull(1, {"batch": 1, "expires": expires}, self._fetch_wait_s + 1.0)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            self._pull_error = str(exc)
        if self._pull_error is not None:
            logger.warning("fetching deliveries failed, retrying: %s", self._pull_error)
            # Bounded pause so a server that is down is not asked in a hot loop.
            await asyncio.sleep(min(self._fetch_wait_s, 1.0))
        self._wakeup.fire()

    async def _pull(self, count: int, request: dict[str, object], wait_s: float) -> int:
        """Send one pull request; how many messages it brought by its end (or ``wait_s``)."""
        nc = self._nc
        assert nc is not None
        ended = self._pull_ended = asyncio.Event()
        self._owed, self._pull_error = count, None
        if self._inbox is None:
            self._inbox = nc.new_inbox()
            await nc.subscribe(self._inbox, cb=self._arrived)
        names = self.names
        await nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{names.deliveries_stream}.{names.consumer}",
            json.dumps(request).encode(),
            reply=self._inbox,
        )
        # The server ends the request itself (404/408); the bound only covers an end
        # that never comes (a reconnect lost the request).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), wait_s)
        return count - self._owed

    async def _arrived(self, msg: Msg) -> None:
        status = (msg.headers or {}).get("Status")
        if status == "100":  # idle heartbeat
            return
        if status:
            # 404/408: the request ended with nothing (more); other codes (409: max
            # in flight reached, leader change...) end it too, and are worth a pause.
            if status not in ("404", "408"):
                self._pull_error = f"{status} {(msg.headers or {}).get('Description', '')}"
            if self._pull_ended is not None:
                self._pull_ended.set()
            return
        if self._closed:
            try:
                await msg.nak()  # give it back now rather than after ack_wait
            except Exception as exc:
                if not is_nats_error(exc):
                    raise
            return
        self._parked[msg.metadata.sequence.stream] = (msg, time.monotonic())
        self._owed -= 1
        if self._owed <= 0 and self._pull_ended is not None:
            self._pull_ended.set()
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
