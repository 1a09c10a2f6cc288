"""``JetStreamQueue``: the cluster :class:`DeliveryQueue` on NATS JetStream.

Layout (every name starts with the configurable prefix, default ``eventgateway``):

* stream ``<prefix>-deliveries`` (subject ``<prefix>.deliveries``, work-queue retention,
  file storage): **one message per delivery**, each carrying the whole event. One message
  per delivery because the message is JetStream's unit of lease, ack, nak-with-delay and
  redelivery count: each subscription retries on its own schedule, and a fan-out event
  whose message held every delivery could not ack one and retry another. The cost is the
  event's bytes once per subscription (max_bytes counts them so).
* durable pull consumer ``<prefix>-dispatch`` shared by every instance: a message is
  handed to one instance at a time; ``ack_wait`` is the lease.
* ordered deliveries (with a partition key) go on ``<prefix>.ordered.<key hash>`` in the
  same stream, read by ``<prefix>-dispatch-ordered``; only a key's oldest unsettled
  delivery is leasable (:mod:`.jetstream_order`).
* a blocked subscription's overflow waits on ``<prefix>.deferred`` in the same stream,
  moved back when due by ``<prefix>-deferred`` (:mod:`.jetstream_defer`).
* stream ``<prefix>-deadletters`` (subjects ``<prefix>.deadletters.<space>.<id>.<event>``):
  given-up deliveries with reason and last attempt (:mod:`.jetstream_dead`); they keep
  their event visible when the byte-bounded log below has dropped its history.
* stream ``<prefix>-log``: the delivery log (:mod:`.jetstream_log`); a deleted space's
  history and dead letters are purged by subject (:mod:`.jetstream_forget`).

Mapping of the interface: ``accept`` publishes and awaits every publish ack (so a 202
means the server stored it); ``lease`` fetches; ``ack`` is a confirmed ack;
``retry_later`` is ``nak(delay)``; ``dead_letter`` publishes the dead letter, then acks.
A delivery's ``id`` is its first stream sequence (a redriven one keeps it); ``attempt``
is the server's delivery count minus one, so a lease that expired (a crash mid-attempt)
counts as an attempt made.

De-duplication: each delivery's ``Nats-Msg-Id`` hashes (space, source, id, subscription),
so within ``dedup_window_s`` the server stores a re-published delivery once. An event is
a duplicate when every one of its deliveries was. Unlike the SQLite queue, a re-sent
event still reaches a subscription added since, and a client retrying an accept that
failed halfway completes it instead of being told "duplicate".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from eventgateway.errors import StoreError
from eventgateway.events.codec import encode_event
from eventgateway.queue._common import Wakeup, dedup_scope, refusal
from eventgateway.queue.base import Accepted, DeliveryQueue
from eventgateway.queue.jetstream_counters import JetStreamCountersMixin
from eventgateway.queue.jetstream_defer import JetStreamDeferMixin
from eventgateway.queue.jetstream_extend import JetStreamExtendMixin
from eventgateway.queue.jetstream_forget import JetStreamForgetMixin
from eventgateway.queue.jetstream_lease import JetStreamLeaseMixin
from eventgateway.queue.jetstream_mover import JetStreamMoverMixin
from eventgateway.queue.jetstream_order import JetStreamOrderMixin
from eventgateway.queue.jetstream_publish import Publisher
from eventgateway.queue.jetstream_replay import JetStreamReplayMixin
from eventgateway.queue.jetstream_retention import JetStreamRetentionMixin
from eventgateway.queue.jetstream_settle import JetStreamSettleMixin
from eventgateway.queue.jetstream_setup import connect, ensure_consumer, ensure_stream
from eventgateway.queue.jetstream_wire import (
    Envelope,
    Names,
    consumer_config,
    deadletter_stream_config,
    delivery_stream_config,
    is_nats_error,
    is_stream_full,
    log_stream_config,
    msg_id,
    store_error,
)

__all__ = ["DEFAULT_MAX_IN_FLIGHT_ORDERED", "JetStreamQueue"]

logger = logging.getLogger(__name__)

# Held ordered deliveries over the cluster (the ordered consumer's ``max_ack_pending``):
# an instance keeps its held messages in memory, event included, so this bound is sized
# by memory. (The unordered consumer's bound follows ``max_deliveries``, see __init__.)
DEFAULT_MAX_IN_FLIGHT_ORDERED = 10_000


class JetStreamQueue(
    JetStreamCountersMixin,  # first: its ``stats`` implements DeliveryLog's abstract one
    JetStreamExtendMixin,
    JetStreamForgetMixin,
    JetStreamReplayMixin,
    JetStreamRetentionMixin,  # the log mixin, with enforce_retention
    JetStreamOrderMixin,
    JetStreamLeaseMixin,
    JetStreamSettleMixin,
    JetStreamMoverMixin,
    JetStreamDeferMixin,
    DeliveryQueue,
):
    """Deliveries in a JetStream stream, leased through a durable pull consumer.

    Args:
        servers: NATS URL(s); the client reconnects forever, and while it cannot reach a
            server ``accept`` raises :class:`StoreError` (the Events API answers 503).
        prefix: starts every stream, subject and consumer name.
        max_deliveries: unsettled deliveries (stream messages) before ``accept`` answers 429.
        max_bytes: stream bytes (messages with headers, one event copy per delivery).
        dedup_window_s: the stream's duplicate window for ``Nats-Msg-Id``.
        lease_s: the consumer's ``ack_wait``.
        replicas: stream replicas; use 3 in a cluster.
        max_in_flight: the consumer's ``max_ack_pending``, over all instances: leased,
            parked, set-aside and retry-waiting (``nak(delay)``) deliveries count. Default
            ``max_deliveries``: then it never binds before the stream's own bound, so no
            number of failing subscriptions' retries stalls the others.
        max_in_flight_ordered: the same for the ordered consumer (default 10,000); held
            ordered messages count against it only, and are kept in memory. Both are
            applied at ``open``, to a consumer made earlier too.
        max_dead_letters: dead letters kept before dead-lettering fails.
        max_log_bytes: the delivery log stream's size; past it the oldest history goes.
        scan_limit: the most log or dead-letter messages one listing reads.
        fetch_wait_s: how long one pull request waits on the server for messages.
        publish_timeout_s: how long ``accept`` waits for the server's publish acks.
        backlog_refresh_s: how stale :meth:`backlog` may be before a call refreshes it
            from the stream's state (one request).
        clock: wall-clock seconds, recorded as each delivery's ``accepted_at``.

    .. versionadded:: 0.2.0
    """

    on_lost: Callable[[str], None] | None = None  # its client closed for good (fatal.py)

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        prefix: str = "eventgateway",
        max_deliveries: int = 1_000_000,
        max_bytes: int = 1024 * 1024 * 1024,
        dedup_window_s: float = 300.0,
        lease_s: float = 60.0,
        replicas: int = 1,
        max_in_flight: int | None = None,
        max_in_flight_ordered: int | None = None,
        max_dead_letters: int = 1_000_000,
        max_log_bytes: int = 1024 * 1024 * 1024,
        scan_limit: int = 100_000,
        fetch_wait_s: float = 5.0,
        publish_timeout_s: float = 5.0,
        backlog_refresh_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.names = Names(prefix)
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        self._max_deliveries = max_deliveries
        self._max_bytes = max_bytes
        self._dedup_window_s = dedup_window_s
        self._lease_s = lease_s
        self._replicas = replicas
        # Retry-waiting deliveries count against max_ack_pending (nats-server 2.9.10), so a
        # bound below the stream's let a failing subscription stall every other one (it
        # was 10,000: seconds of backlog). Server cost, measured: 1,000,000 nak-delayed
        # messages pending on one consumer, 342 MB RSS and 2.5 % of a core.
        self._max_in_flight = max_in_flight or max_deliveries
        self._max_in_flight_ordered = max_in_flight_ordered or DEFAULT_MAX_IN_FLIGHT_ORDERED
        self._max_dead_letters = max_dead_letters
        self._max_log_bytes = max_log_bytes
        self._scan_limit = scan_limit
        self._fetch_wait_s = fetch_wait_s
        self._publish_timeout_s = publish_timeout_s
        self._backlog_refresh_s = backlog_refresh_s
        self._clock = clock
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        # Fetched, not handed out: stream sequence → (message, last keep-alive).
        self._parked: dict[int, tuple[Msg, float]] = {}
        self._max_parked = 1000
        self._held: dict[int, tuple[Msg, float]] = {}  # ordered, behind an older one
        self._pulls = {}
        self._pulling = {}  # open pull requests (the lease mixin's)
        self._leased: dict[str, Msg] = {}
        self._fetcher: asyncio.Task[None] | None = None
        self._wakeup = Wakeup()
        self._backlog = 0
        self._bytes = 0
        self._refreshed_at = float("-inf")
        self._publisher: Publisher | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create or update the streams, and bind the shared consumer.

        Raises:
            StoreError: no server answered, or JetStream refused the configuration.
        """
        try:
            self._nc = await connect(self._servers, active=self._active, lost=self._lost)
            self._js = self._nc.jetstream(timeout=self._publish_timeout_s)
            self._publisher = Publisher(self._nc)
            names, replicas = self.names, self._replicas
            for config in (
                delivery_stream_config(
                    names,
                    max_deliveries=self._max_deliveries,
                    max_bytes=self._max_bytes,
                    dedup_window_s=self._dedup_window_s,
                    replicas=replicas,
                ),
                deadletter_stream_config(
                    names, max_dead_letters=self._max_dead_letters, replicas=replicas
                ),
                log_stream_config(names, max_bytes=self._max_log_bytes, replicas=replicas),
            ):
                await ensure_stream(self._js, config)
            unordered = consumer_config(
                names, lease_s=self._lease_s, max_in_flight=self._max_in_flight
            )
            await ensure_consumer(self._js, names.deliveries_stream, unordered)
            self._sub = await self._js.pull_subscribe(
                names.deliveries_subject,
                durable=names.consumer,
                stream=names.deliveries_stream,
                config=unordered,
            )
            ordered = self._max_in_flight_ordered
            await ensure_consumer(
                self._js,
                names.deliveries_stream,
                consumer_config(names, lease_s=self._lease_s, ordered=True, max_in_flight=ordered),
            )
            await self._ensure_mover_consumer()
            await self._nc.subscribe(f"{names.released_prefix}*", cb=self._released)
            await self._nc.subscribe(names.room_subject, cb=self._room_asked)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            if self._nc is not None:
                await self._nc.close()
            raise store_error(f"open the delivery queue at {self._servers}", exc) from exc
        self._start_keeping_alive()
        await self._refresh(force=True)

    def health(self) -> str | None:
        """``None`` while connected to NATS, else why not (for ``GET /v1/ready``)."""
        if self._nc is None or not self._nc.is_connected:
            return "the delivery queue's NATS connection is down"
        return None

    async def close(self) -> None:
        """Stop handing out deliveries, give back fetched ones, and disconnect."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.fire()
        if self._fetcher is not None:
            self._fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetcher
        await self._stop_moving()
        await self._stop_sharing()
        await self._finish_deferring()  # before the give-back: a failed one is parked again
        await self._stop_keeping_alive()
        if self._nc is None:
            return
        nc, self._nc = self._nc, None
        try:
            # Fetched-but-never-leased messages go back now rather than after ack_wait,
            # so other instances need not wait a lease for them.
            await self._return_fetched(nc)
        except Exception as exc:
            if not is_nats_error(exc):
                raise
            logger.warning("could not return fetched deliveries: %s", exc)
        finally:
            await nc.close()

    # -- accept ---------------------------------------------------------------------------

    async def accept(self, items: Sequence[Accepted]) -> list[bool]:
        """Publish one message per delivery and wait until the server stored them.

        Returns per item ``True`` if it was a duplicate (every delivery of it was).

        Raises:
            TooManyRequestsError: the stream is at ``max_deliveries`` or ``max_bytes``;
                checked before publishing from the last known state, and enforced by
                the stream itself (then part of a batch may be stored; a retry of it is
                de-duplicated).
            StoreError: the queue is closed, or NATS did not confirm in time.
        """
        if self._closed or self._js is None:
            raise StoreError("the JetStream queue is closed")
        now = self._clock()
        plan: list[list[tuple[str, bytes, str]]] = []
        bodies: list[bytes] = []  # each planned item's stored form, for its log record
        results: list[bool] = []
        seen: set[tuple[str, str, str]] = set()
        add_bytes = 0
        for item in items:
            if not item.deliveries:  # nothing to deliver, so nothing to remember
                plan.append([])
                bodies.append(b"")
                results.append(False)
                continue
            key = (dedup_scope(item.deliveries), item.event.source, item.event.id)
            if key in seen:
                plan.append([])
                bodies.append(b"")
                results.append(True)
                continue
            seen.add(key)
            body = encode_event(item.event)
            bodies.append(body)
            messages = []
            for new in item.deliveries:
                envelope = Envelope(
                    space=new.space,
                    subscription_id=new.subscription_id,
                    function_id=new.function_id,
                    accepted_at=now,
                    event=body,
                    partition_key=new.partition_key,
                    auth_request=new.auth_request,
                )
                payload = msgspec.msgpack.encode(envelope)
                dedup_id = msg_id(key[0], key[1], key[2], new.subscription_id)
                messages.append((self.names.delivery_subject(envelope), payload, dedup_id))
                add_bytes += len(payload)
            plan.append(messages)
            results.append(False)
        count = sum(len(messages) for messages in plan)
        if count == 0:
            return results
        if (
            self._backlog + count > self._max_deliveries
            or self._bytes + add_bytes > self._max_bytes
        ):
            raise self._refusal(count)
        acks = await self._publish_all([message for messages in plan for message in messages])
        failures = [a for a in acks if isinstance(a, BaseException)]
        if failures and not all(is_stream_full(f) for f in failures):
            for failure in failures:
                if not is_nats_error(failure):
                    raise failure
            # No refresh here: NATS is unreachable, and a second timeout would double
            # how long the client waits for its 503.
            raise store_error("store the accepted events", failures[0]) from failures[0]
        if failures:
            await self._refresh(force=True)
            raise self._refusal(len(failures))
        # Counted here, not asked of the server per request (a stream info round trip and
        # ~100 µs of JSON per accept); duplicates mean other writers: then ask.
        stored = [a for a in acks if not getattr(a, "duplicate", False)]
        self._backlog, self._bytes = self._backlog + len(stored), self._bytes + add_bytes
        await self._refresh(force=len(stored) < len(acks))
        position = 0
        records = []
        for index, (item, messages) in enumerate(zip(items, plan, strict=True)):
            if messages:
                mine = acks[position : position + len(messages)]
                results[index] = all(getattr(a, "duplicate", False) for a in mine)
                position += len(messages)
                records += self._accepted_records(item, bodies[index], mine, now)
        await self._log_accepted(records)
        return results

    async def _publish_all(self, messages: list[tuple[str, bytes, str]]) -> list[Any]:
        """Each message's publish ack or error (pipelined, see ``jetstream_publish``)."""
        batch = [
            (subject, payload, {"Nats-Msg-Id": msg_id}) for subject, payload, msg_id in messages
        ]
        return await self._publishing().publish(batch, self._publish_timeout_s)

    def _refusal(self, count: int) -> Exception:
        return refusal(
            backlog=self._backlog,
            stored_bytes=self._bytes,
            add_deliveries=count,
            max_deliveries=self._max_deliveries,
            max_bytes=self._max_bytes,
        )

    def _active(self) -> bool:
        # Open once keeping alive (open's last step); a failed open closes its client.
        return self._keeper is not None and not self._closed

    def _lost(self, reason: str) -> None:
        if self.on_lost is not None:
            self.on_lost(reason)
