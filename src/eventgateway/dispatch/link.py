"""The gateway's end of the link to a delivery worker that dispatches (``--dispatch worker``).

The gateway connects to the worker's dispatch socket and keeps the connection up across
worker restarts. It sends the routing configuration on every connect and after every
change, the deliveries its accepts committed as leased to the worker (:class:`Handed`,
within the worker's :class:`Credit`; ``queue/sqlite_handoff.py``), a
:class:`~eventgateway.dispatch.link_wire.Wake` after each of its own commits that made
other deliveries due, and answers the worker's calls of local-runtime functions. The
worker's attempts and settlements come back as :class:`Stats` for the gateway's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from eventgateway.dispatch.link_wire import (
    BackCall,
    BackReply,
    Credit,
    Drain,
    Drained,
    Enqueue,
    Handed,
    QueuedEvent,
    Resync,
    Routing,
    Stats,
    Wake,
    decode_message,
)
from eventgateway.events.codec import encode_event
from eventgateway.model.entities import Cors, EventType, Function, Subscription
from eventgateway.observability.hooks import MetricsHooks
from eventgateway.providers.base import Call
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.providers.remote import answer, frames, write_frame
from eventgateway.queue.base import Accepted
from eventgateway.queue.sqlite_handoff import HandedEvent
from eventgateway.routing.sync import RoutingSync
from eventgateway.routing.table import RoutingTable

__all__ = ["DispatchLink", "routing_message"]

logger = logging.getLogger(__name__)

_RECONNECT_S = 0.05
# At-most-once events wait for the end of the loop iteration, then go as one frame; more
# than this many bytes of event bodies go at once (the worker's frame cap is 16 MiB).
_MAX_QUEUED_BYTES = 1024 * 1024
# Unsent bytes on the socket past which at-most-once events stay in this process (its own
# bounded buffer, which drops and counts): a worker that stalls or reads slowly must not
# make the gateway buffer without bound. Hand-offs are bounded by credit already.
_MAX_UNSENT_BYTES = 32 * 1024 * 1024


def routing_message(sync: RoutingSync) -> Routing:
    """The routing configuration ``sync`` holds, as one message.

    A subscription its table keeps out of routing, for a stored filter that no longer
    compiles, is left out of the message too, and a filter on a sync subscription (which
    nothing applies) is not sent: such a filter may hold what a frame cannot carry (an
    integer beyond 64 bits), and one unsendable entity must not stop the worker's routing.
    """
    entities = sync.entities()
    return Routing(
        revision=sync.revision,
        event_types=[e for e in entities if isinstance(e, EventType)],
        functions=[e for e in entities if isinstance(e, Function)],
        subscriptions=_routed(sync.table, [e for e in entities if isinstance(e, Subscription)]),
        cors=[e for e in entities if isinstance(e, Cors)],
    )


def _routed(table: RoutingTable, subscriptions: list[Subscription]) -> list[Subscription]:
    routed: list[Subscription] = []
    for subscription in subscriptions:
        if subscription.filter is None:
            routed.append(subscription)
            continue
        target = table.target(subscription.space, subscription.subscription_id)
        if target is not None and target.matcher is not None:
            routed.append(subscription)  # it compiled, so its numbers fit
        elif subscription.type != "async":
            routed.append(msgspec.structs.replace(subscription, filter=None))
    return routed


class DispatchLink:
    """Keeps a delivery worker's dispatcher fed with routing, wake-ups and runtime calls.

    Args:
        socket_path: where the worker's dispatcher listens.
        routing: the current routing, as a :class:`Routing` message.
        table: the gateway's routing table, to find a called function.
        providers: the gateway's providers, for calls the worker hands back.
        hooks: the gateway's metrics hooks, fed by the worker's :class:`Stats`.
    """

    def __init__(
        self,
        socket_path: pathlib.Path,
        *,
        routing: Callable[[], Routing],
        table: Callable[[], RoutingTable],
        providers: ProviderRegistry,
        hooks: MetricsHooks,
    ) -> None:
        self._path = socket_path
        self._routing = routing
        self._table = table
        self._providers = providers
        self._hooks = hooks
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._drained: asyncio.Event | None = None
        self._closed = False
        self._queued: list[QueuedEvent] = []
        self._handed: list[HandedEvent] = []
        self._queued_bytes = 0
        # Hand-off credit, per connection (``_epoch`` changes on connect and disconnect):
        # granted by the worker, used by deliveries sent, reserved by accepts in flight.
        self._epoch = 0
        self._granted = 0
        self._used = 0
        self._reserved = 0
        self._flush: asyncio.Handle | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Connect in the background, and again whenever the worker restarts."""
        self._task = asyncio.create_task(self._run(), name="dispatch-link")

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the worker is linked; ``False`` (logged) if not within ``timeout_s``."""
        try:
            await asyncio.wait_for(self.connected.wait(), timeout_s)
        except TimeoutError:
            logger.warning(
                "the delivery worker did not link within %.0f s; deliveries start once it does",
                timeout_s,
            )
            return False
        return True

    def publish(self) -> None:
        """Send the current routing (call after every change of the table)."""
        self._send(self._routing())

    def wake(self) -> None:
        """Tell the worker that a commit made deliveries due."""
        self._send(Wake())

    def enqueue(self, items: Sequence[Accepted]) -> bool:
        """Hand at-most-once events to the worker's queue; ``False`` if it is not linked,
        or is so far behind reading that ``_MAX_UNSENT_BYTES`` wait on the socket.

        The events of one loop iteration (of all the requests it served) go as one frame at
        its end: one write and one read instead of one per request. Like any at-most-once
        event, they are lost if the link or the worker dies before they are delivered.
        """
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        if writer.transport.get_write_buffer_size() + self._queued_bytes > _MAX_UNSENT_BYTES:
            return False
        for item in items:
            if item.deliveries:
                body = encode_event(item.event)
                self._queued.append(
                    QueuedEvent(
                        body,
                        [
                            (
                                d.space,
                                d.subscription_id,
                                d.function_id,
                                d.partition_key,
                                d.auth_request,
                            )
                            for d in item.deliveries
                        ],
                        item.event.type,
                    )
                )
                self._queued_bytes += len(body)
        self._schedule_flush()
        return True

    def _schedule_flush(self) -> None:
        if self._queued_bytes > _MAX_QUEUED_BYTES:
            self._send_queued()
        elif self._flush is None and (self._queued or self._handed):
            self._flush = asyncio.get_running_loop().call_soon(self._send_queued)

    @property
    def credit(self) -> int:
        """How many more deliveries may be handed to the worker now."""
        return self._granted - self._used - self._reserved

    def reserve(self, count: int) -> int:
        """Credit for handing ``count`` deliveries to the worker: a ticket, or 0 if the
        worker is not linked or has no room (the accept writes them due instead)."""
        if self._writer is None or self.credit < count:
            return 0
        self._reserved += count
        return self._epoch

    def hand(self, ticket: int, events: Sequence[HandedEvent], reserved: int) -> None:
        """Send deliveries committed as leased to the worker, and settle the ``reserved``
        credit of ``ticket``. A ticket of an earlier connection sends nothing: its rows
        wait out their lease, or the restarted worker released them already."""
        if ticket != self._epoch:
            _unsent(events, "the delivery worker link was renewed")
            return
        self._reserved -= reserved
        if not events:
            return
        for event in events:
            self._used += len(event.deliveries)
            self._handed.append(event)
            self._queued_bytes += len(event.body)
        self._schedule_flush()

    async def drain(self, timeout_s: float) -> bool:
        """Ask the worker to stop leasing and wait until its deliveries are settled.

        Returns ``False`` if it did not answer within ``timeout_s`` (or is not connected).
        """
        self._drained = asyncio.Event()
        if not self._send(Drain()):
            return False
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except TimeoutError:
            logger.warning("the delivery worker did not drain within %.1f s", timeout_s)
            return False
        return True

    async def close(self) -> None:
        """Drop the connection and stop reconnecting."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        for task in [self._task, *self._calls]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _send(self, message: Any) -> bool:
        writer = self._writer
        if writer is None or writer.is_closing():
            return False  # sent in full on the next connect
        self._send_queued()  # frames stay in the order they were sent in
        write_frame(writer, message)
        return True

    def _send_queued(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        events, handed = self._queued, self._handed
        if not events and not handed:
            return
        self._queued, self._handed, self._queued_bytes = [], [], 0
        writer = self._writer
        if writer is not None and not writer.is_closing():
            if handed:
                write_frame(writer, Handed(handed))
            if events:
                write_frame(writer, Enqueue(events))
            return
        _unsent(handed, "the delivery worker went away")
        if events:  # the link went down this iteration: at most once means they are gone
            logger.warning(
                "%d at-most-once event(s) lost: the delivery worker went away", len(events)
            )

    async def _run(self) -> None:
        while not self._closed:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self._path))
            except OSError:
                await asyncio.sleep(_RECONNECT_S)  # the worker is (re)starting
                continue
            self._renew_credit()
            self._writer = writer
            write_frame(writer, self._routing())
            self.connected.set()
            logger.debug("linked to the delivery worker's dispatcher at %s", self._path)
            try:
                await self._read(reader)
            finally:
                self.connected.clear()
                self._writer = None
                self._renew_credit()
                writer.close()
            if not self._closed:
                logger.warning("link to the delivery worker lost; reconnecting")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        async for message in frames(reader, decode_message, "delivery worker"):
            if isinstance(message, Stats):
                self._count(message)
            elif isinstance(message, BackCall):
                task = asyncio.create_task(self._answer(message))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
            elif isinstance(message, Resync):
                self.publish()
            elif isinstance(message, Credit):
                self._granted = message.granted
            elif isinstance(message, Drained):
                if self._drained is not None:
                    self._drained.set()
            else:
                logger.error("unexpected %s frame from the delivery worker", type(message).__name__)

    def _renew_credit(self) -> None:
        # A new connection (or none): the worker grants afresh, and tickets of the
        # old one are void — as are handed deliveries not yet sent on it: a restarted
        # worker released their leases already, so sending them would deliver twice.
        self._epoch += 1
        self._granted = self._used = self._reserved = 0
        _unsent(self._handed, "the delivery worker link was renewed")
        self._handed = []

    def _count(self, stats: Stats) -> None:
        for outcome, duration_s in stats.attempts:
            self._hooks.count_attempt(outcome, duration_s)
        for space, state, age_s in stats.settled:
            self._hooks.count_settle(space, state, age_s)
        for space, event_type in stats.dropped:
            self._hooks.count_dropped(space, event_type)

    async def _answer(self, request: BackCall) -> None:
        function = self._table().function(request.space, request.function_id)
        if function is None:
            reply = BackReply(
                id=request.id,
                error=f"function {request.function_id!r} does not exist",
                retryable=False,
            )
        else:
            call = Call(
                body=request.body,
                content_type=request.content_type,
                headers=request.headers,
                timeout_s=request.timeout_s,
            )
            try:
                provider = self._providers.get(function.type)
                reply = await answer(BackReply, request.id, provider.call(function, call))
            except Exception as exc:  # a bug: answer anyway, or the worker waits it out
                logger.exception("call of %s for the delivery worker failed", function.function_id)
                reply = BackReply(id=request.id, error=f"gateway error: {exc}")
        self._send(reply)


def _unsent(events: Sequence[HandedEvent], why: str) -> None:
    """Log handed deliveries that will not reach the worker: they are committed, leased in
    the file, and are leased from there when that lease runs out (or at the next worker's
    start)."""
    if events:
        count = sum(len(event.deliveries) for event in events)
        logger.warning("%d handed delivery(ies) wait out their lease: %s", count, why)
