"""The dispatcher process: delivers what the HTTP process committed to the durable queue.

``eg serve`` (in ``--dispatch process`` mode) starts this as a supervised child
(``python -m eventgateway _dispatch``). It shares the SQLite files with the HTTP process,
builds its own routing table from the config store, and wakes on the HTTP process's
datagrams (``notify.py``) rather than polling. Two processes use both cores: with the GIL,
ingest and delivery on one event loop compete for one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import pathlib
import signal
import sys
from typing import Any

from eventgateway.dispatch.dispatcher import Dispatcher
from eventgateway.dispatch.invoke import Invoker
from eventgateway.notify import NotifyListener
from eventgateway.observability.hooks import MetricsHooks
from eventgateway.observability.metrics import Metrics
from eventgateway.observability.system_events import SystemEvents
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from eventgateway.routing.sync import RoutingSync
from eventgateway.routing.table import RoutingTable
from eventgateway.settings import Durability, Limits, Settings

__all__ = ["die_with_parent", "run_worker", "settings_from_json", "settings_to_json"]

logger = logging.getLogger(__name__)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (even by SIGKILL).

    Without it, a ``kill -9`` of ``eg serve`` would leave an orphan dispatcher behind.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def settings_to_json(settings: Settings) -> str:
    """Settings as JSON, to hand to a child process."""
    raw = dataclasses.asdict(settings)
    raw["data_dir"] = str(settings.data_dir)
    return json.dumps(raw)


def settings_from_json(text: str) -> Settings:
    """The inverse of :func:`settings_to_json`."""
    raw: dict[str, Any] = json.loads(text)
    raw["data_dir"] = pathlib.Path(raw["data_dir"])
    raw["limits"] = Limits(**raw["limits"])
    raw["durability"] = Durability(**raw["durability"])
    return Settings(**raw)


async def run_worker(settings: Settings, notify_path: pathlib.Path) -> None:
    """Deliver until SIGTERM/SIGINT, then drain in-flight deliveries and exit."""
    from eventgateway.app import open_queue, open_store

    store = open_store(settings.resolved_store_url)
    queue = open_queue(settings)
    routing = RoutingSync(store)
    metrics = Metrics()
    providers = ProviderRegistry({"http": HttpProvider()})

    def table() -> RoutingTable:
        return routing.table

    system = SystemEvents(queue, table)
    invoker = Invoker(
        providers, timeout_s=settings.limits.function_timeout_s, system_emit=system.emit
    )
    dispatcher = Dispatcher(
        queue,
        invoker,
        table,
        concurrency=settings.limits.dispatch_concurrency,
        per_subscription=settings.limits.per_subscription_concurrency,
        hooks=MetricsHooks(metrics),
    )
    await store.open()
    await queue.open()
    await providers.open()
    await routing.refresh()

    refreshing: set[asyncio.Task[None]] = set()

    def on_config() -> None:
        task = asyncio.get_running_loop().create_task(routing.refresh())
        refreshing.add(task)
        task.add_done_callback(refreshing.discard)

    listener = NotifyListener(notify_path, on_deliveries=queue.notify, on_config=on_config)
    listener.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    run_task = asyncio.create_task(dispatcher.run())
    logger.info("dispatcher process ready")
    await stop.wait()
    logger.info("dispatcher process stopping")
    dispatcher.stop()
    await system.drain()
    _, pending = await asyncio.wait([run_task], timeout=settings.shutdown_timeout_s)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    listener.close()
    await queue.close()
    await providers.close()
    await store.close()
