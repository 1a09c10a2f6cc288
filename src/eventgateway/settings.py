"""One immutable :class:`Settings` object, built from CLI flags and ``EG_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from dataclasses import dataclass, field

from eventgateway.errors import ConfigError

__all__ = ["Durability", "Limits", "Settings", "default_data_dir"]

_DNS_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def default_data_dir() -> pathlib.Path:
    """``$EG_DATA_DIR``, else ``./.eventgateway`` (kept beside the service being worked on)."""
    env = os.environ.get("EG_DATA_DIR")
    return pathlib.Path(env) if env else pathlib.Path(".eventgateway")


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes and concurrency bounds of the gateway."""

    max_body_bytes: int = 6 * 1024 * 1024  # Lambda's synchronous payload limit
    max_header_bytes: int = 64 * 1024
    queue_max_deliveries: int = 1_000_000
    queue_max_bytes: int = 1024 * 1024 * 1024
    at_most_once_buffer: int = 10_000
    dispatch_concurrency: int = 256
    per_subscription_concurrency: int = 32
    function_timeout_s: float = 5.0  # the original's whole-request timeout for `http` functions


@dataclass(frozen=True, slots=True)
class Durability:
    """How accepted events are kept and for how long their history stays."""

    synchronous: str = "FULL"  # SQLite: FULL survives power loss, NORMAL only process crashes
    dedup_window_s: float = 300.0
    lease_s: float = 60.0  # a delivery in flight this long is assumed lost and retried
    retention_max_age_s: float = 7 * 86_400.0
    retention_max_events: int = 1_000_000
    retention_interval_s: float = 60.0
    log_lines_per_function: int = 100_000  # function logs kept per function (and max age above)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a gateway process needs to start; see ``eg serve --help``."""

    host: str = "127.0.0.1"
    events_port: int = 4000
    config_port: int = 4001
    data_dir: pathlib.Path = field(default_factory=default_data_dir)
    store_url: str | None = None  # default: sqlite under data_dir
    domain: str | None = None  # hosted-style <space>.<domain> routing
    shutdown_timeout_s: float = 10.0
    limits: Limits = field(default_factory=Limits)
    durability: Durability = field(default_factory=Durability)
    log_level: str = "info"
    # "process": async deliveries' HTTP calls run in a supervised worker process (the other
    # core); "inline": everything in this process.
    dispatch: str = "process"

    @property
    def in_memory(self) -> bool:
        """True when nothing is written to disk (``memory://`` store)."""
        return self.store_url == "memory://"

    def __post_init__(self) -> None:
        for name in ("events_port", "config_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} is {port!r}: a port must be between 0 and 65535")
        if self.domain is not None and not _DNS_NAME.fullmatch(self.domain):
            raise ConfigError(f"domain {self.domain!r} is not a DNS name, e.g. 'example.com'")
        if self.dispatch not in ("inline", "process"):
            raise ConfigError(f"dispatch is {self.dispatch!r}: use inline or process")
        if self.durability.synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(f"synchronous is {self.durability.synchronous!r}: use FULL or NORMAL")

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file in the data directory."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
