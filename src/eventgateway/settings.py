"""One immutable :class:`Settings` object, built from CLI flags and ``EG_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Literal

from eventgateway.auth.keys import MIN_OPERATOR_KEY_CHARS
from eventgateway.auth.ratelimit import RateLimit
from eventgateway.errors import ConfigError
from eventgateway.events.jsondepth import DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_CEILING
from eventgateway.events.structured import DEFAULT_MAX_BATCH_EVENTS
from eventgateway.providers.targets import IPNetwork, TargetPolicy

__all__ = ["Durability", "Limits", "Settings", "Tls", "default_data_dir"]

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
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH  # levels of arrays and objects in a JSON body
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS  # events in one cloudevents-batch request
    queue_max_deliveries: int = 1_000_000
    queue_max_bytes: int = 1024 * 1024 * 1024
    at_most_once_buffer: int = 10_000
    dispatch_concurrency: int = 1024
    per_subscription_concurrency: int = 128
    function_timeout_s: float = 5.0  # the original's whole-request timeout for `http` functions
    # Seconds from a request's first byte (or a new connection's opening) until its body is
    # read; past them: 408 and close (read_timeout.py). Events API: the original's 60 s.
    # Configuration API: 600 s, not the original's 3 s, which would cut a 50 MiB bundle
    # upload from `eg deploy` on any link under ~140 Mbit/s (docs/wire-compatibility.md).
    events_read_timeout_s: float = 60.0
    config_read_timeout_s: float = 600.0
    # Events API rate limits; None: 1,000 events/s (burst 2,000) with auth, none without.
    rate_limit_space: RateLimit | None = None
    rate_limit_key: RateLimit | None = None
    # Entities per space (0: unlimited): they bound the routing table's memory.
    max_functions_per_space: int = 1_000
    max_subscriptions_per_space: int = 5_000
    max_event_types_per_space: int = 1_000
    max_cors_per_space: int = 1_000
    max_keys_per_space: int = 100  # each is checked on every authenticated request's lookup


def _check_request_limits(limits: Limits) -> None:
    for name in ("max_body_bytes", "max_header_bytes", "max_json_depth", "max_batch_events"):
        value = getattr(limits, name)
        if value < 1:
            raise ConfigError(f"{name} is {value!r}: it must be at least 1")
    for name in ("events_read_timeout_s", "config_read_timeout_s"):
        value = getattr(limits, name)
        if not value > 0:  # NaN too
            raise ConfigError(f"{name} is {value!r}: it must be more than 0 seconds")
    if limits.max_json_depth > MAX_JSON_DEPTH_CEILING:
        raise ConfigError(
            f"max_json_depth is {limits.max_json_depth!r}: it must be at most "
            f"{MAX_JSON_DEPTH_CEILING}, below what the JSON decoders can nest"
        )


@dataclass(frozen=True, slots=True)
class Tls:
    """The certificate chain and private key both listeners serve HTTPS with (PEM files).

    .. versionadded:: 0.1.0
    """

    cert_file: pathlib.Path
    key_file: pathlib.Path


@dataclass(frozen=True, slots=True)
class Durability:
    """How accepted events are kept and for how long their history stays."""

    synchronous: str = "FULL"  # SQLite: FULL survives power loss, NORMAL only process crashes
    dedup_window_s: float = 300.0
    lease_s: float = 60.0  # a dead process's deliveries wait this long; live ones renew it
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
    # core); "worker": that process also leases and settles the durable queue, SQLite or
    # JetStream (in memory it is "process"); "inline": everything in this process.
    dispatch: str = "worker"
    # CPUs the HTTP process and the delivery worker run on (None: any; cpus.py).
    server_cpus: frozenset[int] | None = None
    worker_cpus: frozenset[int] | None = None
    # SSRF guard: may calls reach loopback, private, link-local… addresses? None follows the
    # auth mode (deny with auth, allow without). allowed_targets are reachable in any case.
    private_targets: Literal["allow", "deny"] | None = None
    allowed_targets: tuple[IPNetwork, ...] = ()
    # AWS functions registered without keys: may the gateway's own AWS credentials sign
    # their calls? None follows the auth mode (refuse with auth: tenants must not act with
    # the gateway's role; allow without). docs/security.md.
    aws_default_credentials: bool | None = None
    tls: Tls | None = None  # HTTPS on both listeners; None: plain HTTP
    # Auth mode (docs/security.md): keys on the Configuration API, space path isolation.
    # Off here so in-process gateways (eg dev, the test kit, EmbeddedGateway) stay open as
    # the original was; `eg serve` turns it on unless given --no-auth.
    auth: bool = False
    claim_policy: str = "open"  # who may claim a space: "open" (anyone) or "operator"
    # EG_OPERATOR_KEY; None: <data-dir>/operator.key, made on first start. Not in repr.
    operator_key: str | None = field(default=None, repr=False)

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
        if self.dispatch not in ("inline", "process", "worker"):
            raise ConfigError(f"dispatch is {self.dispatch!r}: use inline, process or worker")
        if self.worker_cpus is not None and self.dispatch == "inline":
            raise ConfigError("--worker-cpus needs a delivery worker: --dispatch process or worker")
        if self.durability.synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(f"synchronous is {self.durability.synchronous!r}: use FULL or NORMAL")
        _check_request_limits(self.limits)
        if self.private_targets not in (None, "allow", "deny"):
            raise ConfigError(f"private_targets is {self.private_targets!r}: use allow or deny")
        if self.aws_default_credentials not in (None, True, False):
            raise ConfigError(
                f"aws_default_credentials is {self.aws_default_credentials!r}: "
                "use True, False or None"
            )
        if self.claim_policy not in ("open", "operator"):
            raise ConfigError(f"claim_policy is {self.claim_policy!r}: use open or operator")
        if self.operator_key is not None and len(self.operator_key) < MIN_OPERATOR_KEY_CHARS:
            raise ConfigError(
                f"EG_OPERATOR_KEY has {len(self.operator_key)} characters: use at least "
                f"{MIN_OPERATOR_KEY_CHARS} random ones"
            )

    @property
    def target_policy(self) -> TargetPolicy:
        """What outbound calls may reach (the SSRF guard; docs/security.md)."""
        # None follows the auth mode: open without auth (as the original), guarded with it.
        allow = not self.auth if self.private_targets is None else self.private_targets == "allow"
        return TargetPolicy(allow_private=allow, allow_list=self.allowed_targets)

    @property
    def aws_default_credentials_allowed(self) -> bool:
        """Whether AWS functions without keys may be called with the gateway's own
        credentials (``eg serve --aws-default-credentials``; docs/security.md)."""
        if self.aws_default_credentials is None:
            return not self.auth
        return self.aws_default_credentials

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a SQLite file in the data directory."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
