"""Leasing for :class:`~eventgateway.queue.jetstream.JetStreamQueue`: one background fetch
at a time (pull requests on the unordered and the ordered consumer), fetched messages
parked until a ``lease`` takes them (kept alive meanwhile: :mod:`.jetstream_keepalive`).

The pull is our own request on our own inbox rather than nats-py's ``fetch``: ``fetch(n)``
returns only when ``n`` messages came or the request expired, so at low rates a delivery
could sit in the client for up to ``fetch_wait_s`` (seconds) before a ``lease`` saw it.
Here each message is parked, and waiting leases woken, the moment it arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from eventgateway.events.codec import decode_event
from eventgateway.queue._common import Wakeup
from eventgateway.queue.base import Delivery, Room
from eventgateway.queue.jetstream_share import JetStreamShareMixin
from eventgateway.queue.jetstream_wire import Envelope, Names, is_nats_error

__all__ = ["JetStreamLeaseMixin"]

logger = logging.getLogger(__name__)

DRAIN_WAIT_S = 2  # seconds close waits for each flush and for the pull requests' last messages
RETURN_ROUNDS = 3  # give-backs at close while what was given back comes back to us


class _Pull:
    """One pull request on one consumer: how many messages it may still bring, its end."""

    __slots__ = ("consumer", "ended", "error", "expires_at", "owed", "quiet", "reply")

    def __init__(
        self, consumer: str, reply: str, owed: int, *, quiet: bool, expires_at: float
    ) -> None:
        self.consumer = consumer
        self.reply = reply
        self.owed = owed
        self.quiet = quiet  # its arrivals wake no lease (the fetch wakes them at its end)
        self.expires_at = expires_at  # monotonic; the server ends it by then
        self.ended = asyncio.Event()
        self.error: str | None = None

    def open_at(self, now: float) -> bool:
        """Still waiting on the server for messages (as far as this client knows)."""
        return not self.ended.is_set() and now < self.expires_at


class JetStreamLeaseMixin(JetStreamShareMixin):
    """``lease`` and the parked messages; the queue provides the state."""

    names: Names
    _nc: Client | None
    _closed: bool
    _wakeup: Wakeup
    # Fetched but not handed out (e.g. their subscription is excluded right now):
    # stream sequence -> (message, monotonic time of the last keep-alive).
    _parked: dict[int, tuple[Msg, float]]
    _held: dict[int, tuple[Msg, float]]  # the ordering mixin's
    _max_parked: int
    _leased: dict[str, Msg]
    _fetcher: asyncio.Task[None] | None
    _lease_s: float
    _fetch_wait_s: float
    # Open pull requests: by reply subject (for their status) and by consumer (for
    # their messages, which arrive on their stream subject).
    _pulls: dict[str, _Pull]
    _pulling: dict[str, _Pull]
    _inbox: str | None = None
    _inbox_sub: Subscription | None = None
    _requests: int = 0

    # Annotations only (no attribute), so they never shadow the real methods in the MRO.
    _admit: Callable[[Msg], Awaitable[None]]  # the ordering mixin's
    _start_moving: Callable[[], None]  # the mover mixin's

    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        """Wait for deliveries and lease up to ``max_count``, in stream order.

        One fetch at a time runs in the background and parks what it fetched, so a
        cancelled ``lease`` loses nothing: the next call finds the messages parked.
        ``exclude`` is read afresh each time the queue looks again.

        Raises:
            ValueError: ``max_count`` is less than 1.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        # Only instances that lease move deferred deliveries back: they are the ones
        # that will take them (an accept-only process never moves any).
        self._start_moving()
        # A waiting lease shows the keep-alive task that someone will take what is parked.
        self._leasing += 1
        try:
            while not self._closed:
                token = self._wakeup.token()
                excluded = frozenset(exclude)
                await self._read_back(excluded, room)
                batch, blocked = self._take(max_count, excluded, room)
                # Blocked subscriptions' messages beyond a few stop counting against the
                # parked bound (set aside, or deferred past a bound), so the fetch goes on
                # past them to other subscriptions.
                self._set_aside(blocked)
                self._offer(blocked, excluded, room)  # to instances with room (jetstream_share)
                if batch:
                    return batch
                free = self._parking_free()
                if free > 0 and (self._fetcher is None or self._fetcher.done()):
                    self._fetcher = asyncio.create_task(self._fetch(min(max_count, free)))
                await token.wait()
            return []
        finally:
            self._leasing -= 1
            self._used_at = time.monotonic()

    async def _return_fetched(self, nc: Client) -> None:
        """Give back every fetched message (at ``close``), and end the pull requests.

        A request of ours may still wait on the server, and the server hands a message
        given back to the first request that waits, ours included; with the inbox
        unsubscribed, that message was lost with the connection and came back only after
        ``ack_wait``, counted (QA: an ordered key stalled for a whole lease after a
        graceful stop). So each give-back is followed by a flush and the wait for what
        came back, which is parked (the queue is closed) and given back again, while
        anything comes back (at most :data:`RETURN_ROUNDS` times: a request of ours takes
        its batch at most, one message for a waiting one). Then the inbox is drained, and
        what the drain brought is given back too.
        """
        for _ in range(RETURN_ROUNDS):
            await self._give_back(logged=False)
            await nc.flush(timeout=DRAIN_WAIT_S)
            await self._arrivals_handled()
            if not self._parked and not self._held:
                break
        sub, self._inbox_sub = self._inbox_sub, None
        if sub is not None:
            try:
                await asyncio.wait_for(sub.drain(), DRAIN_WAIT_S)  # type: ignore[no-untyped-call]
            except TimeoutError:
                logger.warning("the pull requests' inbox did not drain in %d s", DRAIN_WAIT_S)
        await self._give_back(logged=False)
        await nc.flush(timeout=DRAIN_WAIT_S)

    async def _arrivals_handled(self) -> None:
        """Wait (briefly) until the inbox's received messages went through ``_arrived``."""
        sub = self._inbox_sub
        deadline = time.monotonic() + DRAIN_WAIT_S
        # nats-py has no "pending queue empty" event to wait on; this runs once, at close.
        while sub is not None and sub.pending_msgs and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    async def _fetch(self, count: int) -> None:
        names = self.names
        consumers = (names.consumer, names.ordered_consumer)
        error = None
        try:
            # First what is there now on both consumers (no_wait ends at once), then wake
            # the leases once, so they see both in stream order. Failing that, wait for
            # one message from either. A request that only ends at expiry would leave this
            # instance collecting messages after its lease returned, which others need.
            #
            # At most one request is open per consumer: a consumer's messages cannot be
            # told apart by request, and the waiting request that did not end last time
            # (the other consumer's message ended the wait) is still good. Sending more
            # piled them up on the server until it answered 409 "Exceeded MaxWaiting".
            idle = [c for c in consumers if self._open(c) is None]
            at_once = [await self._pull(c, {"batch": count, "no_wait": True}) for c in idle]
            error = await self._ended(at_once, 2.0, everyone=True)
            if error is None and sum(count - p.owed for p in at_once) == 0:
                expires = int(self._fetch_wait_s * 1e9)
                waiting = [
                    self._open(c) or await self._pull(c, {"batch": 1, "expires": expires})
                    for c in consumers
                ]
                error = await self._ended(waiting, self._fetch_wait_s + 1.0, everyone=False)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            error = str(exc)
        if error is not None:
            logger.warning("fetching deliveries failed, retrying: %s", error)
            # Bounded pause so a server that is down is not asked in a hot loop.
            await asyncio.sleep(min(self._fetch_wait_s, 1.0))
        self._wakeup.fire()

    async def _pull(self, consumer: str, request: dict[str, object]) -> _Pull:
        """Send one pull request to ``consumer``."""
        nc = self._nc
        assert nc is not None
        if self._inbox is None:
            self._inbox = nc.new_inbox()
            self._inbox_sub = await nc.subscribe(f"{self._inbox}.*", cb=self._arrived)
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"
        batch = request["batch"]
        assert isinstance(batch, int)
        expires_ns = request.get("expires", 0)
        assert isinstance(expires_ns, int)
        # A no_wait request ends at once; the bound only matters if its end is lost.
        wait_s = expires_ns / 1e9 if expires_ns else 2.0
        pull = self._pulls[reply] = self._pulling[consumer] = _Pull(
            consumer, reply, batch, quiet="no_wait" in request, expires_at=time.monotonic() + wait_s
        )
        await nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.names.deliveries_stream}.{consumer}",
            json.dumps(request).encode(),
            reply=reply,
        )
        return pull

    async def _ended(self, pulls: list[_Pull], wait_s: float, *, everyone: bool) -> str | None:
        """Wait until every (or any) request ended, at most ``wait_s``; the first error.

        The server ends a request itself (404/408); the bound only covers an end that
        never comes (a reconnect lost the request).
        """
        waits = [asyncio.ensure_future(p.ended.wait()) for p in pulls]
        try:
            await asyncio.wait(
                waits,
                timeout=wait_s,
                return_when=asyncio.ALL_COMPLETED if everyone else asyncio.FIRST_COMPLETED,
            )
        finally:
            for wait in waits:
                wait.cancel()
            # A request still open stays known: the next fetch waits on it rather than
            # sending another, and its messages wake leases at once.
            now = time.monotonic()
            for pull in pulls:
                if not pull.open_at(now):
                    self._forget(pull)
        return next((p.error for p in pulls if p.error is not None), None)

    def _forget(self, pull: _Pull) -> None:
        if self._pulls.get(pull.reply) is pull:
            del self._pulls[pull.reply]
        if self._pulling.get(pull.consumer) is pull:
            del self._pulling[pull.consumer]

    def _open(self, consumer: str) -> _Pull | None:
        pull = self._pulling.get(consumer)
        return pull if pull is not None and pull.open_at(time.monotonic()) else None

    async def _arrived(self, msg: Msg) -> None:
        status = (msg.headers or {}).get("Status")
        if status == "100":  # idle heartbeat
            return
        if status:
            # 404/408: the request ended with nothing (more); other codes (409: max
            # in flight reached, leader change...) end it too, and are worth a pause.
            ended = self._pulls.get(msg.subject)
            if ended is not None:
                if status not in ("404", "408"):
                    ended.error = f"{status} {(msg.headers or {}).get('Description', '')}"
                ended.ended.set()
                self._forget(ended)
            return
        if self._closed:
            # An answer to a pull made before the close: handed back with the rest.
            self._parked[msg.metadata.sequence.stream] = (msg, time.monotonic())
            return
        pull = self._pulling.get(msg.metadata.consumer)
        await self._admit(msg)
        if pull is not None:
            pull.owed -= 1
            if pull.owed <= 0:
                pull.ended.set()
                self._forget(pull)
        if pull is None or not pull.quiet:
            self._wakeup.fire()

    def _take(
        self, max_count: int, exclude: frozenset[str], room: Room | None
    ) -> tuple[list[Delivery], dict[str, list[int]]]:
        """Up to ``max_count`` deliveries, oldest first; and, by subscription, the whole
        parked messages skipped because it had no room (oldest first)."""
        taken: list[Delivery] = []
        blocked: dict[str, list[int]] = {}
        left: dict[str, int] = {}
        aside = self._aside
        now = time.monotonic()
        for seq in sorted(self._parked):
            if len(taken) >= max_count:
                break
            if seq in aside:
                continue  # its event is read back first (``_read_back``)
            msg, touched = self._parked[seq]
            if self._expired(touched, now):
                # Not kept alive in time: the server has it back, and leasing this copy
                # would deliver it twice. Its redelivery is fetched like any message.
                del self._parked[seq]
                continue
            envelope = msgspec.msgpack.decode(msg.data, type=Envelope)
            sub = envelope.subscription_id
            if sub not in exclude and room is not None and sub not in left:
                left[sub] = room(sub)
            if sub in exclude or left.get(sub, 1) <= 0:
                blocked.setdefault(sub, []).append(seq)
                continue
            if sub in left:
                left[sub] -= 1
            del self._parked[seq]
            delivery = Delivery(
                id=envelope.delivery_id or str(seq),
                space=envelope.space,
                subscription_id=envelope.subscription_id,
                function_id=envelope.function_id,
                event=decode_event(envelope.event),
                body=envelope.event,
                accepted_at=envelope.accepted_at,
                # A deferred delivery's count restarted on its new message (see Envelope).
                attempt=envelope.attempts_before + msg.metadata.num_delivered - 1,
                partition_key=envelope.partition_key,
                auth_request=envelope.auth_request,
                # Monotonic: when ack_wait runs out, as far as this client knows (extend).
                lease_until=touched + self._lease_s,
            )
            self._leased[delivery.id] = msg
            taken.append(delivery)
        return taken, blocked
