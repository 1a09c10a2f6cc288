"""Cluster mode: what a gateway keeps on NATS JetStream when its store URL is ``nats://``.

With ``--store nats://…`` every shared thing moves to JetStream, under one name prefix:
configuration (KV, ``store/nats.py``), deliveries, dead letters and the delivery log
(streams, ``queue/jetstream*.py``), function logs (a stream, ``runtime/logs_nats.py``)
and code bundles (an object store, ``runtime/bundles_nats.py``). The config store and
the queue hold their own connections; logs and bundles share :class:`NatsLink`'s.
"""

from __future__ import annotations

import pathlib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventgateway.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from nats.aio.client import Client

    from eventgateway.queue.jetstream import JetStreamQueue
    from eventgateway.runtime.bundles_nats import NatsBundleStore
    from eventgateway.runtime.logs_nats import NatsLogStore
    from eventgateway.settings import Settings

__all__ = ["NatsLink", "NatsTarget", "parse_nats_url"]

_EXAMPLE = "nats://HOST:4222[,nats://HOST2:4222][?prefix=NAME][&replicas=N][&max_in_flight=N]"
_MAX_REPLICAS = 5  # JetStream's own limit on a stream's replicas
_MAX_IN_FLIGHT = 10_000_000


@dataclass(frozen=True, slots=True)
class NatsTarget:
    """The servers, name prefix and replica count a ``nats://`` store URL names."""

    servers: tuple[str, ...]
    prefix: str
    replicas: int = 1
    max_in_flight: int | None = None  # None: the queue's default


def parse_nats_url(url: str) -> NatsTarget:
    """``nats://host:4222[,nats://host2:4222][?prefix=NAME][&replicas=N][&max_in_flight=N]``
    as a target.

    ``replicas`` (1–5, default 1) is given to every stream, KV bucket and object store
    the gateway creates; use 3 on a 3-node cluster (``docs/cluster.md``, durability).
    ``max_in_flight`` is the delivery consumer's ``max_ack_pending`` (``docs/cluster.md``).

    Raises:
        ConfigError: naming the URL, the bad part and the expected shape.
    """
    from eventgateway.store.nats import DEFAULT_PREFIX

    servers_part, _, query = url.partition("?")
    servers = tuple(servers_part.split(","))
    for server in servers:
        try:
            parts = urllib.parse.urlsplit(server)
            parts.port  # noqa: B018 - parsing it is the check: raises on a bad port
        except ValueError as exc:
            raise ConfigError(
                f"store {url!r}: {server!r} is not a NATS URL ({exc}); use {_EXAMPLE}"
            ) from exc
        if parts.scheme != "nats" or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(f"store {url!r}: {server!r} is not a NATS URL; use {_EXAMPLE}")
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"prefix", "replicas", "max_in_flight"})
    if unknown:
        raise ConfigError(f"store {url!r}: unknown option {unknown[0]!r}; use {_EXAMPLE}")
    repeated = sorted(name for name, values in options.items() if len(values) > 1)
    if repeated:  # which one an instance used would depend on the parser: refuse both
        raise ConfigError(f"store {url!r}: option {repeated[0]!r} is given more than once")
    replicas = _whole(url, "replicas", options.get("replicas", ["1"])[-1], _MAX_REPLICAS)
    in_flight = options.get("max_in_flight")
    return NatsTarget(
        servers,
        options.get("prefix", [DEFAULT_PREFIX])[-1],
        replicas,
        None if in_flight is None else _whole(url, "max_in_flight", in_flight[-1], _MAX_IN_FLIGHT),
    )


def _whole(url: str, name: str, raw: str, most: int) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise ConfigError(
            f"store {url!r}: {name}={raw!r} must be a whole number from 1 to {most:,}; "
            f"use {_EXAMPLE}"
        )
    return int(raw)


def jetstream_queue(
    store_url: str, *, max_deliveries: int, max_bytes: int, dedup_window_s: float, lease_s: float
) -> JetStreamQueue:
    """The durable delivery queue on the JetStream a ``nats://`` store URL names (the
    gateway's, and its delivery worker's with ``--dispatch worker``).

    Raises:
        ConfigError: the URL or a limit is not valid, naming the URL.
    """
    from eventgateway.queue.jetstream import JetStreamQueue

    target = parse_nats_url(store_url)
    try:
        return JetStreamQueue(
            target.servers,
            prefix=target.prefix,
            max_deliveries=max_deliveries,
            max_bytes=max_bytes,
            dedup_window_s=dedup_window_s,
            lease_s=lease_s,
            replicas=target.replicas,
            max_in_flight=target.max_in_flight,
        )
    except ValueError as exc:
        raise ConfigError(f"store {store_url!r}: {exc}") from exc


class NatsLink:
    """One NATS connection for function logs and bundles, made in :meth:`connect`.

    The stores are built before the connection exists (the gateway is assembled
    synchronously); they use the client only once opened, after :meth:`connect`.
    """

    def __init__(self, settings: Settings, target: NatsTarget) -> None:
        from nats.aio.client import Client

        from eventgateway.runtime.bundles_nats import NatsBundleStore
        from eventgateway.runtime.logs_nats import NatsLogStore

        self.target = target
        self.client: Client = Client()
        self.on_lost: Callable[[str], None] | None = None  # closed for good (fatal.py)
        self._closing = False
        durability = settings.durability
        self.logs: NatsLogStore = NatsLogStore(
            self.client,
            prefix=target.prefix,
            max_age_s=durability.retention_max_age_s,
            max_lines_per_function=durability.log_lines_per_function,
            replicas=target.replicas,
        )
        self.bundles: NatsBundleStore = NatsBundleStore(
            pathlib.Path(settings.data_dir) / "bundles",
            self.client,
            prefix=target.prefix,
            replicas=target.replicas,
        )

    async def connect(self) -> None:
        """Connect (then reconnect forever); ``StoreError`` when no server answers."""
        try:
            await self.client.connect(
                servers=list(self.target.servers),
                name=f"eventgateway {self.target.prefix} logs+bundles",
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                closed_cb=self._on_closed,
            )
        except Exception as exc:  # nats-py raises its own and OS errors alike
            raise StoreError(
                f"cannot connect to NATS at {', '.join(self.target.servers)}: {exc}"
            ) from exc

    def health(self) -> str | None:
        """``None`` while connected to NATS, else why not (for ``GET /v1/ready``)."""
        if not self.client.is_connected:
            return "the NATS connection of function logs and bundles is down"
        return None

    async def _on_closed(self) -> None:
        if not self._closing and self.on_lost is not None:
            self.on_lost(
                "the NATS connection of function logs and bundles was closed for good "
                f"({self.client.last_error})"
            )

    async def close(self) -> None:
        """Close the connection (the stores are closed by their owner first)."""
        self._closing = True
        if not self.client.is_closed:
            await self.client.close()
