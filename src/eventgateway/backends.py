"""The backends a gateway's settings name: config store, delivery queue, worker socket."""

from __future__ import annotations

import pathlib
import tempfile
import urllib.parse
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
    """The config store a URL names: ``sqlite:///path``, ``memory://`` or ``nats://…``."""
    if url.startswith("sqlite://"):
        from eventgateway.store.sqlite import SqliteStore

        path = pathlib.Path(url.removeprefix("sqlite://"))
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
    """``nats://host:4222[,nats://host2:4222][?prefix=NAME]``: the config store on NATS KV.

    Only the configuration lives on NATS so far; queue, logs and bundles stay in SQLite
    under the data directory (docs/cluster.md).
    """
    from eventgateway.store.nats import DEFAULT_PREFIX, NatsStore

    example = "nats://HOST:4222[,nats://HOST2:4222][?prefix=NAME]"
    servers_part, _, query = url.partition("?")
    servers = servers_part.split(",")
    for server in servers:
        try:
            parts = urllib.parse.urlsplit(server)
            parts.port  # noqa: B018 - parsing it is the check: raises on a bad port
        except ValueError as exc:
            raise ConfigError(
                f"store {url!r}: {server!r} is not a NATS URL ({exc}); use {example}"
            ) from exc
        if parts.scheme != "nats" or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(f"store {url!r}: {server!r} is not a NATS URL; use {example}")
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"prefix"})
    if unknown:
        raise ConfigError(f"store {url!r}: unknown option {unknown[0]!r}; use {example}")
    prefix = options.get("prefix", [DEFAULT_PREFIX])[-1]
    try:
        return NatsStore(servers, prefix=prefix)
    except ValueError as exc:
        raise ConfigError(f"store {url!r}: {exc}") from exc


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
