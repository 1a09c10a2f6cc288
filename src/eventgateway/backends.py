"""The backends a gateway's settings name: config store, delivery queue, worker socket."""

from __future__ import annotations

import pathlib
import tempfile
from typing import TYPE_CHECKING

from eventgateway.errors import ConfigError
from eventgateway.queue.memory import MemoryQueue
from eventgateway.settings import Settings
from eventgateway.store.base import ConfigStore

if TYPE_CHECKING:  # imported lazily: memory:// installs need no SQLite queue
    from eventgateway.queue.sqlite import SqliteQueue

__all__ = ["open_queue", "open_store", "worker_socket"]


def worker_socket(data_dir: pathlib.Path) -> pathlib.Path:
    """Where the delivery worker listens: in the data dir, unless that path is too long."""
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
