"""Composition root: the only place that picks concrete backends.

:class:`Gateway` wires store, routing, queue, providers, dispatcher and both APIs, and
owns their lifecycle. :func:`prepare_server` binds its two listeners — the Events API and
the Configuration API — and builds the uvicorn server running both in one event loop;
:func:`serve` runs that until a signal, :mod:`eventgateway.embedded` on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventgateway.api.config import create_config_app
from eventgateway.api.deliveries import create_deliveries_app, is_deliveries_path
from eventgateway.api.events import EventsApp, Receive, Scope, Send
from eventgateway.api.invoke import create_invoke_app, is_invoke_path
from eventgateway.api.runtime import create_runtime_app, is_runtime_path
from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Invoker
from eventgateway.errors import ConfigError, StoreError
from eventgateway.observability.hooks import MetricsHooks
from eventgateway.observability.metrics import Metrics
from eventgateway.observability.system_events import SystemEvents
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.providers.remote import RemoteHttpProvider
from eventgateway.queue.memory import MemoryQueue
from eventgateway.routing.sync import RoutingSync
from eventgateway.routing.table import RoutingTable
from eventgateway.runtime.service import LocalRuntime
from eventgateway.server import DrainingServer, bind, uvicorn_config
from eventgateway.settings import Settings
from eventgateway.store.base import ConfigStore
from eventgateway.supervisor import WorkerProcess

if TYPE_CHECKING:  # imported lazily: memory:// installs need no SQLite queue
    from eventgateway.queue.sqlite import SqliteQueue

__all__ = ["Gateway", "PreparedServer", "open_queue", "open_store", "prepare_server", "serve"]

logger = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _worker_socket(data_dir: pathlib.Path) -> pathlib.Path:
    path = (data_dir / "worker.sock").resolve()
    if len(str(path)) < 100:  # AF_UNIX paths are limited to 108 bytes
        return path
    return pathlib.Path(tempfile.mkdtemp(prefix="eg-")) / "dispatch.sock"


def open_store(url: str) -> ConfigStore:
    """The config store a URL names: ``sqlite:///path`` or ``memory://``."""
    if url.startswith("sqlite://"):
        from eventgateway.store.sqlite import SqliteStore

        path = pathlib.Path(url.removeprefix("sqlite://"))
        return SqliteStore(path)
    if url == "memory://":
        from eventgateway.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("nats://"):
        raise ConfigError(f"store {url!r}: cluster mode on NATS is not available in this version")
    raise ConfigError(f"store {url!r} is not a known store URL; use sqlite:///PATH or memory://")


def open_queue(settings: Settings) -> MemoryQueue | SqliteQueue:
    """The durable delivery queue: SQLite beside the config store, or memory."""
    limits, durability = settings.limits, settings.durability
    if settings.in_memory:
        return MemoryQueue(
            max_deliveries=limits.queue_max_deliveries,
            max_bytes=limits.queue_max_bytes,
            dedup_window_s=durability.dedup_window_s,
            lease_s=durability.lease_s,
        )
    from eventgateway.queue.sqlite import SqliteQueue

    return SqliteQueue(
        settings.data_dir / "queue.db",
        max_deliveries=limits.queue_max_deliveries,
        max_bytes=limits.queue_max_bytes,
        dedup_window_s=durability.dedup_window_s,
        lease_s=durability.lease_s,
        synchronous=durability.synchronous,
    )


class Gateway:
    """One gateway: both APIs, routing, queues and dispatchers, with a start/stop lifecycle."""

    def __init__(self, settings: Settings, *, store: ConfigStore | None = None) -> None:
        self.settings = settings
        limits = settings.limits
        self.metrics = Metrics()
        self.store = store or open_store(settings.resolved_store_url)
        self.routing = RoutingSync(self.store, on_table=self._update_gauges)
        self.queue = open_queue(settings)
        self.fast_queue = MemoryQueue(
            max_deliveries=limits.at_most_once_buffer,
            max_bytes=limits.queue_max_bytes,
            dedup_window_s=settings.durability.dedup_window_s,
            lease_s=settings.durability.lease_s,
        )
        self.metrics.events_backlog.set_function(
            lambda: self.queue.backlog() + self.fast_queue.backlog()
        )
        # Sync routes always call from this process (lowest latency). Async deliveries do
        # too in inline mode; in process mode their HTTP calls go to a worker process, so
        # the HTTP client's CPU runs on the other core while SQLite keeps one writer.
        self.runtime = LocalRuntime(None if settings.in_memory else settings.data_dir)
        self.providers = ProviderRegistry({"http": HttpProvider(), **self.runtime.providers})
        self.worker: WorkerProcess | None = None
        delivery_providers = self.providers
        if settings.dispatch == "process":
            socket_path = _worker_socket(settings.data_dir)
            self.worker = WorkerProcess(socket_path, log_level=settings.log_level)
            delivery_providers = ProviderRegistry(
                {"http": RemoteHttpProvider(socket_path), **self.runtime.providers}
            )
        self._delivery_providers = delivery_providers
        self.system = SystemEvents(self.queue, self._table)
        self.invoker = Invoker(
            self.providers,
            timeout_s=limits.function_timeout_s,
            system_emit=self.system.emit,
        )
        delivery_invoker = Invoker(
            delivery_providers,
            timeout_s=limits.function_timeout_s,
            system_emit=self.system.emit,
        )
        hooks = MetricsHooks(self.metrics)
        self.dispatchers = [
            Dispatcher(
                queue,
                delivery_invoker,
                self._table,
                concurrency=limits.dispatch_concurrency,
                per_subscription=limits.per_subscription_concurrency,
                at_most_once=queue is self.fast_queue,
                hooks=hooks,
            )
            for queue in (self.queue, self.fast_queue)
        ]
        self.events_app = EventsApp(
            table=self._table,
            durable=self.queue,
            fast=self.fast_queue,
            invoker=self.invoker,
            system=self.system,
            metrics=self.metrics,
            limits=limits,
            domain=settings.domain,
        )
        config_app = create_config_app(
            self.store, self.metrics, check_function=self.runtime.check_function
        )
        self.config_app = _RefreshAfterWrite(
            _ConfigRouter(
                config_app,
                create_deliveries_app(self.queue),
                create_runtime_app(self.runtime.bundles, self.runtime.logs),
                create_invoke_app(self.store, self.invoker, self.runtime.logs, self.metrics),
            ),
            self,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._dispatch_tasks: list[asyncio.Task[None]] = []

    def _table(self) -> RoutingTable:
        return self.routing.table

    def _update_gauges(self, table: RoutingTable) -> None:
        gauges = {
            "eventtypes": self.metrics.eventtypes_total,
            "functions": self.metrics.functions_total,
            "subscriptions": self.metrics.subscriptions_total,
            "cors": self.metrics.cors_total,
        }
        for gauge in gauges.values():
            gauge.clear()
        for space, counts in table.counts().items():
            for kind, count in counts.items():
                gauges[kind].labels(space=space).set(count)

    async def start(self) -> None:
        """Open store and queues, load routing, and start the background tasks."""
        if not self.settings.in_memory:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self.queue.open()
        await self.fast_queue.open()
        await self.providers.open()
        await self.runtime.open()
        await self.routing.refresh()
        if self.worker is not None:
            await self.worker.start()
        self._dispatch_tasks = [
            asyncio.create_task(dispatcher.run(), name="dispatcher")
            for dispatcher in self.dispatchers
        ]
        self._tasks = [
            asyncio.create_task(self.routing.run(), name="routing-sync"),
            asyncio.create_task(self._retention(), name="retention"),
        ]

    async def _retention(self) -> None:
        durability = self.settings.durability
        while True:
            await asyncio.sleep(durability.retention_interval_s)  # a schedule, not a poll
            for queue in (self.queue, self.fast_queue):
                try:
                    removed = await queue.enforce_retention(
                        max_age_s=durability.retention_max_age_s,
                        max_events=durability.retention_max_events,
                    )
                except StoreError:
                    logger.exception("delivery log retention failed; will try again")
                    continue
                if removed:
                    logger.info("retention removed %d settled event(s)", removed)
            try:
                await self.runtime.logs.enforce_retention(
                    max_age_s=durability.retention_max_age_s,
                    max_lines_per_function=durability.log_lines_per_function,
                )
            except StoreError:
                logger.exception("function log retention failed; will try again")

    def begin_drain(self) -> None:
        """From now on the Events API answers 503 (called on the first shutdown signal).

        Live log streams end too, so their clients do not hold the shutdown open.
        """
        self.events_app.draining = True
        try:
            # From a signal handler: do it between two steps of the loop, not inside one.
            asyncio.get_running_loop().call_soon(self.runtime.logs.end_tails)
        except RuntimeError:  # no loop running in this thread
            self.runtime.logs.end_tails()

    async def stop(self) -> None:
        """Stop in order: ingest, leasing, in-flight deliveries (bounded), then resources.

        Deliveries still in flight when the timeout passes are cancelled; being unacked,
        durable ones are delivered again after a restart.
        """
        self.begin_drain()
        for dispatcher in self.dispatchers:
            dispatcher.stop()
        if self._dispatch_tasks:
            _, pending = await asyncio.wait(
                self._dispatch_tasks, timeout=self.settings.shutdown_timeout_s
            )
            if pending:
                logger.warning(
                    "in-flight deliveries still running after %.1f s; cancelling them",
                    self.settings.shutdown_timeout_s,
                )
        for task in [*self._tasks, *self._dispatch_tasks]:
            task.cancel()
        for task in [*self._tasks, *self._dispatch_tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._dispatch_tasks = [], []
        await self.system.drain()
        await self._delivery_providers.close()
        if self.worker is not None:
            await self.worker.stop(self.settings.shutdown_timeout_s)
        await self.queue.close()
        await self.fast_queue.close()
        await self.providers.close()
        await self.runtime.close()
        await self.store.close()

    def asgi(self, config_port: int) -> _PortRouter:
        """One ASGI app for both listeners, told apart by the local port."""
        return _PortRouter(self, config_port)


class _RefreshAfterWrite:
    """Applies a config write to this process's routing table before answering it.

    Without this, a client that creates a subscription and emits at once could race the
    store watch; with it, this instance routes the change as soon as the client hears 2xx
    (other instances follow through the watch).
    """

    def __init__(self, app: Any, gateway: Gateway) -> None:
        self._app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _WRITE_METHODS
            or is_invoke_path(scope["path"])  # calls a function, changes no configuration
        ):
            await self._app(scope, receive, send)
            return

        async def send_after_refresh(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self._gateway.routing.refresh()
            await send(message)

        await self._app(scope, receive, send_after_refresh)


class _ConfigRouter:
    """The Configuration API: resources, the delivery log, bundles, function logs, invoke."""

    def __init__(self, config: Any, deliveries: Any, runtime: Any, invoke: Any) -> None:
        self._config = config
        self._deliveries = deliveries
        self._runtime = runtime
        self._invoke = invoke

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if is_deliveries_path(path):
                await self._deliveries(scope, receive, send)
                return
            if is_runtime_path(path):
                await self._runtime(scope, receive, send)
                return
            if is_invoke_path(path):
                await self._invoke(scope, receive, send)
                return
        await self._config(scope, receive, send)


class _PortRouter:
    def __init__(self, gateway: Gateway, config_port: int) -> None:
        self._gateway = gateway
        self._config_port = config_port
        self._events = gateway.events_app
        self._config = gateway.config_app
        self.startup_error: Exception | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            server = scope.get("server")
            if server is not None and server[1] == self._config_port:
                await self._config(scope, receive, send)
            else:
                await self._events(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._gateway.start()
                except Exception as exc:
                    logger.exception("gateway failed to start")
                    self.startup_error = exc
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


@dataclass(frozen=True, slots=True)
class PreparedServer:
    """A gateway and the uvicorn server for it, on two bound listeners; nothing runs yet.

    The ports are the bound ones (the settings may ask for 0); ``router.startup_error``
    holds what made ``Gateway.start()`` fail under uvicorn's lifespan.
    """

    gateway: Gateway
    server: DrainingServer
    router: _PortRouter
    sockets: list[socket.socket]  # events, config: for ``server.run(sockets=…)``
    events_port: int
    config_port: int

    def close_sockets(self) -> None:
        """Close both listeners (uvicorn closes them on shutdown, not on a failed start)."""
        for sock in self.sockets:
            sock.close()


def prepare_server(
    settings: Settings,
    *,
    on_started: Callable[[], None] | None = None,
    configure_logging: bool = True,
) -> PreparedServer:
    """Bind both listeners and build the gateway and the uvicorn server that will run it.

    Raises:
        ConfigError: a port is taken, or the settings name an unknown store.
    """
    events_sock = bind(settings.host, settings.events_port)
    sockets = [events_sock]
    try:
        config_sock = bind(settings.host, settings.config_port)
        sockets.append(config_sock)
        gateway = Gateway(settings)
        router = gateway.asgi(config_sock.getsockname()[1])
        config = uvicorn_config(router, settings, configure_logging=configure_logging)
        server = DrainingServer(config, gateway.begin_drain, on_started=on_started)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return PreparedServer(
        gateway,
        server,
        router,
        sockets,
        events_port=events_sock.getsockname()[1],
        config_port=config_sock.getsockname()[1],
    )


def serve(settings: Settings) -> None:
    """Run a gateway until SIGINT/SIGTERM; both listeners in this process."""
    prepared = prepare_server(settings)
    logger.info(
        "Events API on http://%s:%d, Configuration API on http://%s:%d, store %s",
        settings.host,
        prepared.events_port,
        settings.host,
        prepared.config_port,
        settings.resolved_store_url,
    )
    prepared.server.run(sockets=prepared.sockets)
