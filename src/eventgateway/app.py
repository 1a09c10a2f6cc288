"""Composition root: the only place that picks concrete backends.

:class:`Gateway` wires store, routing, queue, providers, dispatcher and both APIs, and
owns their lifecycle. :func:`serve` runs it under uvicorn on two listeners — the Events
API and the Configuration API — in one process and one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import socket
from types import FrameType
from typing import Any

import uvicorn

from eventgateway.api.config import create_config_app
from eventgateway.api.events import EventsApp, Receive, Scope, Send
from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Invoker
from eventgateway.errors import ConfigError
from eventgateway.observability.metrics import Metrics
from eventgateway.observability.system_events import SystemEvents
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.queue.base import DeliveryQueue
from eventgateway.queue.memory import MemoryQueue
from eventgateway.routing.sync import RoutingSync
from eventgateway.routing.table import RoutingTable
from eventgateway.settings import Settings
from eventgateway.store.base import ConfigStore

__all__ = ["Gateway", "open_store", "serve"]

logger = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


class Gateway:
    """One gateway: both APIs, routing, queue and dispatcher, with a start/stop lifecycle."""

    def __init__(self, settings: Settings, *, store: ConfigStore | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = store or open_store(settings.resolved_store_url)
        self.routing = RoutingSync(self.store, on_table=self._update_gauges)
        self.queue: DeliveryQueue = MemoryQueue(settings.limits.queue_max_deliveries)
        self.providers = ProviderRegistry({"http": HttpProvider()})
        self.system = SystemEvents(self.queue, self._table)
        self.invoker = Invoker(
            self.providers,
            timeout_s=settings.limits.function_timeout_s,
            system_emit=self.system.emit,
        )
        self.dispatcher = Dispatcher(
            self.queue,
            self.invoker,
            self._table,
            concurrency=settings.limits.dispatch_concurrency,
        )
        self.events_app = EventsApp(
            table=self._table,
            queue=self.queue,
            invoker=self.invoker,
            system=self.system,
            metrics=self.metrics,
            limits=settings.limits,
            domain=settings.domain,
        )
        self.config_app = _RefreshAfterWrite(create_config_app(self.store, self.metrics), self)
        self._tasks: list[asyncio.Task[None]] = []

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
        """Open the store, load routing, and start the background tasks."""
        if self.settings.store_url is None:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self.queue.open()
        await self.providers.open()
        await self.routing.refresh()
        self._tasks = [
            asyncio.create_task(self.routing.run(), name="routing-sync"),
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
        ]

    def begin_drain(self) -> None:
        """From now on the Events API answers 503 (called on the first shutdown signal)."""
        self.events_app.draining = True

    async def stop(self) -> None:
        """Stop in order: ingest, leasing, in-flight deliveries (bounded), then resources."""
        self.begin_drain()
        self.dispatcher.stop()
        await self.system.drain()
        await self.queue.close()
        dispatcher_task = self._tasks[1] if len(self._tasks) > 1 else None
        if dispatcher_task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(dispatcher_task), self.settings.shutdown_timeout_s
                )
            except TimeoutError:
                logger.warning(
                    "in-flight deliveries still running after %.1f s; cancelling them",
                    self.settings.shutdown_timeout_s,
                )
        await self.providers.close()
        await self.store.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

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
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS:
            await self._app(scope, receive, send)
            return

        async def send_after_refresh(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self._gateway.routing.refresh()
            await send(message)

        await self._app(scope, receive, send_after_refresh)


class _PortRouter:
    def __init__(self, gateway: Gateway, config_port: int) -> None:
        self._gateway = gateway
        self._config_port = config_port
        self._events = gateway.events_app
        self._config = gateway.config_app

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
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Server(uvicorn.Server):
    """uvicorn's server, telling the gateway to drain on the first signal."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self._gateway = gateway

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._gateway.begin_drain()
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``ConfigError`` naming the port if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    """Run a gateway until SIGINT/SIGTERM; both listeners in this process."""
    events_sock = bind(settings.host, settings.events_port)
    config_sock = bind(settings.host, settings.config_port)
    gateway = Gateway(settings)
    config = uvicorn.Config(
        gateway.asgi(config_sock.getsockname()[1]),
        lifespan="on",
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        server_header=False,
    )
    server = _Server(config, gateway)
    logger.info(
        "Events API on http://%s:%d, Configuration API on http://%s:%d, store %s",
        settings.host,
        events_sock.getsockname()[1],
        settings.host,
        config_sock.getsockname()[1],
        settings.resolved_store_url,
    )
    server.run(sockets=[events_sock, config_sock])
