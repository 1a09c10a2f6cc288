"""The delivery worker's own dispatcher of the durable queue (``eg serve --dispatch worker``).

The worker opens the queue itself — the SQLite file beside the gateway (SQLite allows
several processes per file), or the JetStream streams (one more leasing client) — and runs
the same :class:`~eventgateway.dispatch.dispatcher.Dispatcher` the gateway would: lease,
call, settle. So the HTTP process only accepts, and the cost of a delivery
(leases, acks, the delivery log, the HTTP call) runs on the other core.

What the worker cannot know by itself comes over the link to the gateway
(``dispatch/link_wire.py``): the routing configuration, the deliveries the gateway's
accepts committed as leased to this worker (SQLite: ``queue/sqlite_handoff.py``; the
worker grants :class:`Credit` for them), wake-ups after the gateway's other commits, and
calls of local-runtime functions, which run in the gateway process. Metrics go back the
same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Coroutine
from typing import Any

from eventgateway.dispatch.dispatcher import Dispatcher, DispatchHooks
from eventgateway.dispatch.invoke import Invoker
from eventgateway.dispatch.link_wire import (
    BackCall,
    BackReply,
    Credit,
    Drain,
    Drained,
    Enqueue,
    Handed,
    Message,
    QueuedEvent,
    Resync,
    Routing,
    Stats,
    Wake,
    decode_message,
)
from eventgateway.errors import ProviderError, StoreError, TooManyRequestsError
from eventgateway.events.codec import decode_event
from eventgateway.model.entities import Function
from eventgateway.model.runtime_provider import RUNTIME_TYPES
from eventgateway.observability.system_events import SystemEvents
from eventgateway.providers.base import Call, Provider, Reply
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.providers.remote import frames, unwrap, write_frame
from eventgateway.queue.base import Accepted, DeliveryQueue, NewDelivery
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.routing.table import RoutingTable

__all__ = ["DispatchHost"]

logger = logging.getLogger(__name__)

_BACK_MARGIN_S = 5.0
# A local runtime function runs under its own timeout (up to 900 s, Lambda semantics), not
# the subscription's attemptTimeoutMs, and may first wait for a free worker: the gateway
# always answers, so for those the timer is only a safety net for a gateway that stopped
# answering while its link stayed up. Cutting the wait at attemptTimeoutMs failed the
# attempt while the handler ran on, and the retry ran it again.
_RUNTIME_ANSWER_S = 30 * 60.0
_RESYNC_TIMEOUT_S = 5.0


class DispatchHost:
    """Dispatches ``queue`` from the worker process, for the gateway connected to it.

    Args:
        queue: the gateway's durable queue (SQLite file or JetStream), opened by this process.
        fast: the at-most-once queue: in this process's memory only, filled by the gateway.
        http: the provider of ``http`` functions (the worker's own client).
        concurrency: deliveries in flight at most.
        per_subscription: deliveries in flight per subscription at most.
        timeout_s: the default timeout of a call.
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        fast: MemoryQueue,
        http: Provider,
        *,
        concurrency: int,
        per_subscription: int,
        timeout_s: float,
    ) -> None:
        self._queue = queue
        self._fast = fast
        self._table = RoutingTable.empty()
        self._writer: asyncio.StreamWriter | None = None
        self._link: asyncio.Task[Any] | None = None  # the task serving the gateway's link
        self._routed = asyncio.Event()  # the first Routing arrived
        self._resynced: asyncio.Event | None = None
        self._back = _BackProvider(self)
        self._stats = _ForwardingHooks(self)
        self.system = SystemEvents(queue, self.table)
        invoker = Invoker(
            ProviderRegistry({"http": http}, fallback=self._back),
            timeout_s=timeout_s,
            system_emit=self.system.emit,
        )
        self.dispatchers = [
            Dispatcher(
                each,
                invoker,
                self.table,
                concurrency=concurrency,
                per_subscription=per_subscription,
                at_most_once=each is fast,
                hooks=self._stats,
                on_unknown=self._resync,
            )
            for each in (queue, fast)
        ]
        self._run_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Hand-off credit (SQLite only): handed deliveries held at most, and the running
        # total granted on the current connection.
        self._handing = queue if isinstance(queue, SqliteQueue) else None
        self._credit_window = concurrency
        self._granted = 0
        self._credit_scheduled = False
        if self._handing is not None:
            self._handing.on_handed_out = self._grant

    def table(self) -> RoutingTable:
        """The routing table as the gateway last sent it."""
        return self._table

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection from the gateway until it closes."""
        if self._writer is not None:
            self._writer.close()  # a gateway reconnected: the old link is dead
        self._writer = writer
        self._link = asyncio.current_task()
        if self._handing is not None:
            self._granted = max(0, self._credit_window - self._handing.handed())
            self.send(Credit(self._granted))
        try:
            async for message in frames(reader, decode_message, "gateway"):
                self._handle(message)
        finally:
            if self._writer is writer:
                self._writer = None
                self._back.fail_all("the gateway went away during the call")
            writer.close()

    async def disconnect(self, timeout_s: float = 1.0) -> None:
        """Close the gateway's link and wait (at most ``timeout_s``) for its reader to end.

        At shutdown: a link task left running would be cancelled by the event loop's
        close, which Python 3.11's stream server logs as an error with a traceback.
        """
        writer, link = self._writer, self._link
        if writer is not None:
            writer.close()
        if link is not None and not link.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(link), timeout_s)

    def _handle(self, message: Message) -> None:
        if isinstance(message, Handed):
            if self._handing is not None:
                self._handing.hand(message.events)
        elif isinstance(message, Wake):
            self._queue.notify()
        elif isinstance(message, Routing):
            self._table = RoutingTable.build(
                event_types=message.event_types,
                functions=message.functions,
                subscriptions=message.subscriptions,
                cors=message.cors,
                revision=message.revision,
            )
            self._routed.set()
            # Sent on every (re)connect: wake-ups sent while unlinked were lost, so look.
            self._queue.notify()
            if self._resynced is not None:
                self._resynced.set()
                self._resynced = None
        elif isinstance(message, BackReply):
            self._back.resolve(message)
        elif isinstance(message, Enqueue):
            self._spawn(self._enqueue(message))
        elif isinstance(message, Drain):
            self._stop_leasing()
            self._spawn(self._report_drained())
        else:
            logger.error("unexpected %s frame from the gateway", type(message).__name__)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Held until done: the loop keeps only a weak reference to a task.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send(self, message: Any) -> bool:
        """Send ``message`` to the gateway; ``False`` if none is connected."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        write_frame(writer, message)
        return True

    def _grant(self, count: int) -> None:
        # Handed deliveries left the queue's hands: the gateway may send as many more.
        # Sent once per loop iteration, however many leases returned meanwhile.
        self._granted += count
        if not self._credit_scheduled:
            self._credit_scheduled = True
            asyncio.get_running_loop().call_soon(self._send_credit)

    def _send_credit(self) -> None:
        self._credit_scheduled = False
        self.send(Credit(self._granted))

    async def _enqueue(self, message: Enqueue) -> None:
        if self._fast.is_full():
            # At saturation most frames land here: decoding was most of a dropped event's
            # cost, and the CPU is the deliveries'. (A duplicate is counted as dropped here,
            # where a queue with room would have ignored it.)
            self._stats.dropped_queued(message.events)
            return
        items = [
            Accepted(
                decode_event(queued.body),
                [NewDelivery(*delivery) for delivery in queued.deliveries],
                queued.body,
            )
            for queued in message.events
        ]
        try:
            await self._fast.accept(items)
        except (TooManyRequestsError, StoreError):
            # At-most-once is the original's contract: a full buffer drops, and counts it.
            self._stats.dropped(items)

    async def run(self) -> None:
        """Dispatch once the gateway sent its routing, until :meth:`stop`."""
        await self._routed.wait()
        self._run_task = asyncio.current_task()
        async with asyncio.TaskGroup() as group:
            for dispatcher in self.dispatchers:
                group.create_task(dispatcher.run())

    def _stop_leasing(self) -> None:
        for dispatcher in self.dispatchers:
            dispatcher.stop()

    def stop(self) -> None:
        """Stop leasing (also before the first routing arrived); :meth:`run` then returns."""
        self._stop_leasing()
        self._routed.set()

    async def _report_drained(self) -> None:
        task = self._run_task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)
        self._stats.flush()
        self.send(Drained())

    async def _resync(self) -> None:
        # A delivery names a subscription this table lacks: the gateway's table, which
        # routed the event, is newer. Ask for it; frames are ordered, so the answer is.
        if self._resynced is None:
            self._resynced = asyncio.Event()
            if not self.send(Resync()):
                self._resynced = None
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._resynced.wait(), _RESYNC_TIMEOUT_S)


class _ForwardingHooks(DispatchHooks):
    """Collects attempts and settlements and sends them once per loop iteration."""

    def __init__(self, host: DispatchHost) -> None:
        self._host = host
        self._attempts: list[tuple[str, float]] = []
        self._settled: list[tuple[str, str, float]] = []
        self._dropped: list[tuple[str, str]] = []
        self._scheduled = False

    def after_attempt(self, delivery: Any, record: Any) -> None:
        self._attempts.append((record.outcome, record.duration_s))
        self._schedule()

    def after_settle(self, delivery: Any, state: str) -> None:
        age_s = max(0.0, time.time() - delivery.accepted_at)
        self._settled.append((delivery.space, state, age_s))
        self._schedule()

    def dropped(self, items: list[Accepted]) -> None:
        for item in items:
            for delivery in item.deliveries:
                self._dropped.append((delivery.space, item.event.type))
        self._schedule()

    def dropped_queued(self, events: list[QueuedEvent]) -> None:
        for queued in events:
            for delivery in queued.deliveries:
                self._dropped.append((delivery[0], queued.type))
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._attempts or self._settled or self._dropped:
            # Not connected: the counts are lost, the deliveries are not.
            self._host.send(Stats(self._attempts, self._settled, self._dropped))
            self._attempts, self._settled, self._dropped = [], [], []


class _BackProvider(Provider):
    """Calls a function in the gateway process: the local runtime's functions run there."""

    def __init__(self, host: DispatchHost) -> None:
        self._host = host
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[BackReply]] = {}

    async def call(self, function: Function, call: Call) -> Reply:
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BackReply] = loop.create_future()
        message = BackCall(
            id=request_id,
            space=function.space,
            function_id=function.function_id,
            body=call.body,
            content_type=call.content_type,
            headers=list(call.headers),
            timeout_s=call.timeout_s,
        )
        if not self._host.send(message):
            raise ProviderError(
                "the gateway process is not connected to the delivery worker", interrupted=True
            )
        self._pending[request_id] = future
        runtime = function.type in RUNTIME_TYPES
        limit_s = _RUNTIME_ANSWER_S if runtime else call.timeout_s + _BACK_MARGIN_S
        timer = loop.call_later(limit_s, _expire, future)
        try:
            reply = await future
        except TimeoutError as exc:
            raise ProviderError(
                f"function {function.function_id!r}: no answer from the gateway process"
            ) from exc
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
        return unwrap(reply)

    def resolve(self, reply: BackReply) -> None:
        future = self._pending.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply)

    def fail_all(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ProviderError(reason, interrupted=True))


def _expire(future: asyncio.Future[BackReply]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
