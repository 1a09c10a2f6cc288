"""The backends a gateway's settings name: config store, delivery queue, worker socket."""

from __future__ import annotations

import pathlib
import tempfile
from typing import TYPE_CHECKING

from eventgateway.call_worker import STORE_URL_ENV, QueueOptions
from eventgateway.cpus import format_cpus
from eventgateway.errors import ConfigError
from eventgateway.queue.memory import MemoryQueue
from eventgateway.settings import Settings
from eventgateway.store.base import ConfigStore
from eventgateway.supervisor import WorkerProcess

if TYPE_CHECKING:  # imported lazily: memory:// needs neither SQLite nor NATS
    from eventgateway.queue.jetstream import JetStreamQueue
    from eventgateway.queue.sqlite import SqliteQueue

__all__ = [
    "delivery_worker",
    "dispatch_in_worker",
    "open_queue",
    "open_store",
    "worker_args",
    "worker_socket",
]


def worker_socket(data_dir: pathlib.Path) -> pathlib.Path:
    """Where the delivery worker listens: in the data dir, unless that path is too long."""
    path = (data_dir / "worker.sock").resolve()
    if len(str(path)) < 100:  # AF_UNIX paths are limited to 108 bytes
        return path
    return pathlib.Path(tempfile.mkdtemp(prefix="eg-")) / "dispatch.sock"


def dispatch_in_worker(settings: Settings) -> bool:
    """Whether the delivery worker dispatches the queue itself: ``--dispatch worker`` on
    SQLite or NATS (an in-memory queue lives in one process only)."""
    return settings.dispatch == "worker" and not settings.in_memory


def worker_args(settings: Settings, dispatch_socket: pathlib.Path) -> list[str]:
    """The delivery worker's arguments for dispatching the SQLite queue itself."""
    limits, durability = settings.limits, settings.durability
    return QueueOptions(
        socket_path=dispatch_socket,
        path=settings.data_dir / "queue.db",
        synchronous=durability.synchronous,
        lease_s=durability.lease_s,
        dedup_window_s=durability.dedup_window_s,
        max_deliveries=limits.queue_max_deliveries,
        max_bytes=limits.queue_max_bytes,
        concurrency=limits.dispatch_concurrency,
        per_subscription=limits.per_subscription_concurrency,
        timeout_s=limits.function_timeout_s,
        fast_buffer=limits.at_most_once_buffer,
        shutdown_timeout_s=settings.shutdown_timeout_s,
    ).to_args()


def delivery_worker(settings: Settings) -> tuple[WorkerProcess, pathlib.Path, pathlib.Path | None]:
    """The delivery worker of ``--dispatch process`` or ``worker``, the socket it takes
    calls on, and the one its dispatcher links on (``None`` unless it dispatches)."""
    socket_path = worker_socket(settings.data_dir)
    dispatch_socket, extra, env = None, [], {}
    if dispatch_in_worker(settings):
        dispatch_socket = socket_path.with_name(socket_path.stem + "-dispatch.sock")
        extra = worker_args(settings, dispatch_socket)
        if settings.resolved_store_url.startswith("nats://"):
            env[STORE_URL_ENV] = settings.resolved_store_url
    if settings.worker_cpus is not None:
        extra = [*extra, "--cpus", format_cpus(settings.worker_cpus)]
    worker = WorkerProcess(
        socket_path,
        log_level=settings.log_level,
        targets=settings.target_policy,
        extra_args=extra,
        extra_env=env,
    )
    return worker, socket_path, dispatch_socket


def open_store(url: str) -> ConfigStore:
    """The config store a URL names: ``sqlite:///path``, ``memory://`` or ``nats://…``."""
    if url.startswith("sqlite://"):
        from eventgateway.store.sqlite import SqliteStore

        raw = url.removeprefix("sqlite://")
        # sqlite:////abs (SQLAlchemy's form, and ours for the default) and sqlite:///abs
        # both mean /abs: POSIX keeps a leading "//" as is, which then showed in messages.
        path = pathlib.Path("/" + raw.lstrip("/") if raw.startswith("/") else raw)
        return SqliteStore(path)
    if url == "memory://":
        from eventgateway.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("nats://"):
        return _nats_store(url)
    raise ConfigError(
        f"store {url!r} is not a known store URL; use sqlite:///PATH, memory:// or nats://HOST:PORT"
    )


def _nats_store(url: str) -> ConfigStore:
    """The config store on NATS KV (``docs/cluster.md``)."""
    from eventgateway.cluster import parse_nats_url
    from eventgateway.store.nats import NatsStore

    target = parse_nats_url(url)
    try:
        return NatsStore(target.servers, prefix=target.prefix, replicas=target.replicas)
    except ValueError as exc:
        raise ConfigError(f"store {url!r}: {exc}") from exc


def open_queue(settings: Settings) -> MemoryQueue | SqliteQueue | JetStreamQueue:
    """The durable delivery queue: SQLite beside the config store, JetStream, or memory."""
    limits, durability = settings.limits, settings.durability
    if settings.resolved_store_url.startswith("nats://"):
        from eventgateway.cluster import jetstream_queue

        return jetstream_queue(
            settings.resolved_store_url,
            max_deliveries=limits.queue_max_deliveries,
            max_bytes=limits.queue_max_bytes,
            dedup_window_s=durability.dedup_window_s,
            lease_s=durability.lease_s,
        )
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
