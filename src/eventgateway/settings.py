"""One immutable :class:`Settings` object, built from CLI flags and ``EG_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from dataclasses import dataclass, field

from eventgateway.errors import ConfigError

__all__ = ["Limits", "Settings", "default_data_dir"]


def default_data_dir() -> pathlib.Path:
    """``$EG_DATA_DIR``, else ``./.eventgateway`` (kept beside the service being worked on)."""
    env = os.environ.get("EG_DATA_DIR")
    return pathlib.Path(env) if env else pathlib.Path(".eventgateway")


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes and concurrency bounds of the gateway."""

    max_body_bytes: int = 6 * 1024 * 1024  # Lambda's synchronous payload limit
    max_header_bytes: int = 64 * 1024
    queue_max_deliveries: int = 100_000
    dispatch_concurrency: int = 256
    function_timeout_s: float = 5.0  # the original's whole-request timeout for `http` functions


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
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("events_port", "config_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name} is {port!r}: a port must be between 0 and 65535")
        if self.domain is not None and (not self.domain or self.domain.startswith(".")):
            raise ConfigError(f"domain {self.domain!r} is not a DNS name, e.g. 'example.com'")

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file in the data directory."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
