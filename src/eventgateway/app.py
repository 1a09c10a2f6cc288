"""Composition root: the only place that picks concrete backends.

:class:`Gateway` wires store, routing, queue, providers, dispatcher and both APIs, and
owns their lifecycle; :mod:`eventgateway.serving` runs it under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import time
from typing import TYPE_CHECKING

from eventgateway.api.access import path_check, protect_config_api
from eventgateway.api.config import create_config_app
from eventgateway.api.deliveries import create_deliveries_app
from eventgateway.api.emit_guard import emit_rate_limiter
from eventgateway.api.events import EventsApp
from eventgateway.api.invoke import create_invoke_app
from eventgateway.api.limits import RequestLimits
from eventgateway.api.quotas import per_space_quotas
from eventgateway.api.readiness import Check
from eventgateway.api.resources import all_checks
from eventgateway.api.runtime import create_runtime_app, is_runtime_path
from eventgateway.asgi_routing import ConfigRouter, PortRouter, RefreshAfterWrite
from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.operator import operator_key_for
from eventgateway.backends import delivery_worker, open_queue, open_store
from eventgateway.cluster import NatsLink, parse_nats_url
from eventgateway.data_dir import DataDirLock
from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Invoker
from eventgateway.dispatch.link import DispatchLink, routing_message
from eventgateway.dispatch.restarting import run_restarting
from eventgateway.errors import StoreError
from eventgateway.fatal import Fatal
from eventgateway.fdlimit import pool_size
from eventgateway.observability.hooks import MetricsHooks
from eventgateway.observability.metrics import Metrics
from eventgateway.observability.system_events import SystemEvents
from eventgateway.providers.aws import aws_providers
from eventgateway.providers.aws_credentials import AwsCredentialsCheck
from eventgateway.providers.guard import TargetCheck
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.providers.remote import RemoteHttpProvider
from eventgateway.providers.runtime import runs_as
from eventgateway.queue.base import DeliveryQueue
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.routing.sync import RoutingSync
from eventgateway.routing.table import RoutingTable
from eventgateway.runtime.service import LocalRuntime, bundles_named_in
from eventgateway.settings import Settings
from eventgateway.store.base import ConfigStore
from eventgateway.supervisor import WorkerProcess

if TYPE_CHECKING:
    from eventgateway.providers.resolver import Resolver

__all__ = ["Gateway", "open_queue", "open_store"]

logger = logging.getLogger(__name__)

_WORKER_START_S = 15.0
# Past the shutdown deadline a step still gets this long: the worker, told to stop, writes
# the outcomes it has before it exits.
_EXIT_GRACE_S = 1.0


class Gateway:
    """One gateway: both APIs, routing, queues and dispatchers, with a start/stop lifecycle."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: ConfigStore | None = None,
        resolver: Resolver | None = None,  # DNS of outbound calls; tests inject one
    ) -> None:
        self.settings = settings
        limits = settings.limits
        self.metrics = Metrics()
        self.store = store or open_store(settings.resolved_store_url)
        self.link: DispatchLink | None = None  # --dispatch worker
        self.routing = RoutingSync(self.store, on_table=self._table_changed)
        self.keyring = KeyRing(self.store)  # spaces and keys; enforced in auth mode only
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
        self.metrics.before_render = self.queue.refresh_counters
        # Sync routes always call from this process (lowest latency). Async deliveries are
        # made here in inline mode; in process mode their HTTP calls go to a worker
        # process; in worker mode that process also leases and settles (docs/delivery.md).
        self.nats: NatsLink | None = None
        if settings.resolved_store_url.startswith("nats://"):  # cluster mode: docs/cluster.md
            self.nats = NatsLink(settings, parse_nats_url(settings.resolved_store_url))
            self.runtime = LocalRuntime(
                settings.data_dir, logs=self.nats.logs, bundles=self.nats.bundles
            )
        else:
            self.runtime = LocalRuntime(
                None if settings.in_memory else settings.data_dir,
                named_bundles=bundles_named_in(self.store),
            )
        self.fatal = Fatal()  # a NATS client closed for good stops this instance (fatal.py)
        self.fatal.watch(self.store, self.queue, self.nats)
        if settings.auth:  # a space deleted through any instance ends its tails and runs here
            self.keyring.on_space_ended = self.runtime.space_ended
        targets = settings.target_policy  # the SSRF guard, in this process and the worker
        pool = pool_size(limits.dispatch_concurrency)  # hung subscribers never starve it
        http = HttpProvider(policy=targets, resolver=resolver, max_connections=pool)
        # Called from this process in every mode; the SDK is loaded on first use.
        lend_aws = settings.aws_default_credentials_allowed
        aws = aws_providers(default_credentials=lend_aws)
        self.providers = ProviderRegistry({"http": http, **aws, **self.runtime.providers})
        self.worker: WorkerProcess | None = None
        self._drain_started_s: float | None = None  # time.monotonic() of the first signal
        self._dir_lock: DataDirLock | None = None
        delivery_providers = self.providers
        dispatch_socket: pathlib.Path | None = None
        if settings.dispatch in ("process", "worker"):
            self.worker, socket_path, dispatch_socket = delivery_worker(settings)
            delivery_providers = ProviderRegistry(
                {"http": RemoteHttpProvider(socket_path), **aws, **self.runtime.providers}
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
        in_process: tuple[DeliveryQueue, ...] = (self.queue, self.fast_queue)
        if dispatch_socket is not None:
            # --dispatch worker: the worker leases, calls and settles the durable queue.
            in_process = (self.fast_queue,)
            self.link = DispatchLink(
                dispatch_socket,
                routing=lambda: routing_message(self.routing),
                table=self._table,
                providers=self.providers,
                hooks=hooks,
            )
            if isinstance(self.queue, SqliteQueue):  # JetStream: the worker's pull waits
                self.queue.on_commit_wake = self.link.wake
                self.queue.handoff = self.link  # fresh deliveries go to the worker at accept
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
            for queue in in_process
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
            authenticator=self.keyring if settings.auth else None,
            rate_limiter=emit_rate_limiter(limits, auth=settings.auth),
            forward_fast=None if self.link is None else self.link.enqueue,
        )
        config_app = create_config_app(
            self.store,
            self.metrics,
            check_function=all_checks(
                self.runtime.check_function,
                TargetCheck(targets, resolver=resolver),
                AwsCredentialsCheck(allow_default=lend_aws),
            ),
            quotas=per_space_quotas(limits),
            check_path=path_check(settings),
            readiness=self._readiness_checks(),
        )
        self.config_app = RefreshAfterWrite(
            RequestLimits(
                protect_config_api(
                    ConfigRouter(
                        config_app,
                        create_deliveries_app(self.queue, self._table),
                        create_runtime_app(
                            self.runtime.bundles, self.runtime.logs, functions=self.store
                        ),
                        create_invoke_app(
                            self.store, self.invoker, self.runtime.logs, self.metrics
                        ),
                    ),
                    self.keyring,
                    settings,
                    delivery_log=self.queue,
                    also_forget=[self.fast_queue],
                    function_logs=self.runtime.logs,
                    end_functions=self.runtime.functions.end_space,
                ),
                limits,
                own_body=is_runtime_path,  # bundle zips: the bundle store has its own limit
            ),
            self,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._dispatch_tasks: list[asyncio.Task[None]] = []

    def _readiness_checks(self) -> list[Check]:
        # GET /v1/ready: conditions under which this instance would answer events 503, or
        # accept them without delivering (api/readiness.py). Each is a read, no I/O.
        checks: list[Check] = [self._draining]
        for part in (self.store, self.queue, self.nats):
            health = getattr(part, "health", None)  # the NATS-backed parts have one
            if health is not None:
                checks.append(health)
        if self.worker is not None:
            checks.append(self._worker_up)
        return checks

    def _draining(self) -> str | None:
        return "the gateway is shutting down" if self.events_app.draining else None

    def _worker_up(self) -> str | None:
        # --dispatch worker: linked, since the worker leases and settles; process: running,
        # since it makes the HTTP calls of every delivery.
        if self.link is not None:
            up = self.link.connected.is_set()
        else:
            up = self.worker is not None and self.worker.running
        return None if up else "the delivery worker is not running (starting, or restarting)"

    def _table(self) -> RoutingTable:
        return self.routing.table

    def _table_changed(self, table: RoutingTable) -> None:
        # Before the change's 2xx goes out (RefreshAfterWrite): the worker routes it first.
        if self.link is not None:
            self.link.publish()
        self.runtime.functions.retire_stale(
            lambda spec: runs_as(table.function(spec.space, spec.function_id), spec)
        )
        self.metrics.set_entity_counts(table.counts())

    async def start(self) -> None:
        """Lock the data dir, open store and queues, load routing, start the background tasks.

        Raises:
            ConfigError: the data dir cannot be used, or another gateway holds it.
        """
        if not self.settings.in_memory or self.worker is not None:  # files or the socket
            self._dir_lock = DataDirLock.acquire(self.settings.data_dir)
        try:
            await self._open()
        except BaseException:
            self._release_data_dir()
            raise

    def _release_data_dir(self) -> None:
        if self._dir_lock is not None:
            self._dir_lock.release()
            self._dir_lock = None

    async def _open(self) -> None:
        await self.store.open()
        await self.queue.open()
        await self.fast_queue.open()
        await self.providers.open()
        if self.nats is not None:
            await self.nats.connect()
        await self.runtime.open()
        await self.routing.refresh()
        self.keyring.set_operator_key(operator_key_for(self.settings))
        await self.keyring.refresh()
        if self.worker is not None:
            if self._dir_lock is not None and self._dir_lock.fd is not None:
                self.worker.pass_fds = (self._dir_lock.fd,)
            await self.worker.start()
        if self.link is not None:
            await self.link.start()
            # Ready means delivering: events accepted before the worker links would wait
            # for it, and be routed by whatever the configuration is by then.
            await self.link.wait_connected(_WORKER_START_S)
        self._dispatch_tasks = [
            asyncio.create_task(run_restarting(dispatcher), name="dispatcher")
            for dispatcher in self.dispatchers
        ]
        self._tasks = [
            asyncio.create_task(self.routing.run(), name="routing-sync"),
            asyncio.create_task(self.keyring.run(), name="keyring-sync"),
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
                    logger.info("retention removed %d delivered event(s)", removed)
            if self.nats is not None:
                continue  # the logs stream's own limits (max_age, per function) do it
            try:
                await self.runtime.logs.enforce_retention(
                    max_age_s=durability.retention_max_age_s,
                    max_lines_per_function=durability.log_lines_per_function,
                )
            except StoreError:
                logger.exception("function log retention failed; will try again")

    def begin_drain(self) -> None:
        """From now on the Events API answers 503 (called on the first shutdown signal);
        live log streams end too, so their clients do not hold the shutdown open."""
        self.events_app.draining = True
        if self._drain_started_s is None:  # the shutdown's budget counts from here
            self._drain_started_s = time.monotonic()
        if self.worker is not None:
            self.worker.expect_exit()
        try:
            # From a signal handler: do it between two steps of the loop, not inside one.
            asyncio.get_running_loop().call_soon(self.runtime.logs.end_tails)
        except RuntimeError:  # no loop running in this thread
            self.runtime.logs.end_tails()

    async def stop(self) -> None:
        """Stop in order: ingest, leasing, in-flight deliveries (bounded), then resources;
        deliveries in flight at the timeout are cancelled (durable ones come back)."""
        self.begin_drain()
        # One budget from the first signal for every step that waits (uvicorn's wait for
        # requests, each wait on deliveries): a stuck call and a stuck delivery held the
        # shutdown twice as long when each got the whole timeout.
        clock = time.monotonic
        assert self._drain_started_s is not None
        deadline_s = self._drain_started_s + self.settings.shutdown_timeout_s

        def remaining_s() -> float:
            return max(_EXIT_GRACE_S, deadline_s - clock())

        for dispatcher in self.dispatchers:
            dispatcher.stop()
        if self._dispatch_tasks:
            _, pending = await asyncio.wait(self._dispatch_tasks, timeout=remaining_s())
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
        if self.link is not None:
            await self.link.drain(remaining_s())
            await self.link.close()
        await self.system.drain()
        await self._delivery_providers.close()
        if self.worker is not None:
            await self.worker.stop(remaining_s())
        await self.queue.close()
        await self.fast_queue.close()
        await self.providers.close()
        await self.runtime.close()
        if self.nats is not None:
            await self.nats.close()
        await self.store.close()
        self._release_data_dir()

    def asgi(self, config_port: int) -> PortRouter:
        """One ASGI app for both listeners, told apart by the local port."""
        return PortRouter(self, config_port)
