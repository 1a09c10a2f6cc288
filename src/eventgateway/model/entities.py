"""The configuration entities as they travel on the wire and sit in the store.

Field names are the original gateway's camelCase JSON names (``functionId``,
``subscriptionId``…); empty optional fields are left out of the JSON, as the original did.
Entities are immutable: an update builds a new one.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

Kind = Literal["eventtypes", "functions", "subscriptions", "cors", "spaces", "keys"]
# The routed resources of the Configuration API (what routing and its gauges read).
KINDS: Final[tuple[Kind, ...]] = ("eventtypes", "functions", "subscriptions", "cors")
# Claimed spaces and their API keys (model/spaces.py): stored beside the resources so
# every backend keeps and watches them alike, but never routed.
AUTH_KINDS: Final[tuple[Kind, ...]] = ("spaces", "keys")


class EventType(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """A registered event type; ``authorizer_id`` names a function that vets each event."""

    space: str
    name: str
    authorizer_id: str | None = None
    metadata: dict[str, str] | None = None

    @property
    def key(self) -> str:
        return self.name


class Function(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """A function the gateway can call; ``provider`` is the type's normalised config.

    Beyond the original's fields: ``signing_secrets`` (``whsec_…``, at most two, for
    rotation) make every delivery carry Standard Webhooks signature headers;
    ``content_mode`` ``"binary"`` sends CloudEvents 1.0 events in binary mode.
    """

    space: str
    function_id: str
    type: str
    provider: dict[str, Any]
    metadata: dict[str, str] | None = None
    signing_secrets: list[str] | None = None
    content_mode: str = "structured"

    @property
    def key(self) -> str:
        return self.function_id


class RetryPolicy(
    msgspec.Struct,
    frozen=True,
    omit_defaults=True,
    rename={
        "max_attempts": "maxAttempts",
        "max_age_s": "maxAgeSeconds",
        "initial_delay_ms": "initialDelayMs",
        "max_delay_ms": "maxDelayMs",
        "attempt_timeout_ms": "attemptTimeoutMs",
        "max_retry_after_s": "maxRetryAfterSeconds",
    },
):
    """How an async delivery is retried; the defaults give up within 24 h (Standard Webhooks).

    ``backoff`` is ``"exponential"`` (``initial * 2**(n-1)``), ``"linear"``
    (``initial * n``) or ``"constant"``; each delay is capped at ``max_delay_ms`` and,
    with ``jitter``, drawn uniformly from ``[0, delay]`` (full jitter).
    """

    max_attempts: int = 25
    max_age_s: float = 86_400.0
    backoff: str = "exponential"
    initial_delay_ms: int = 5_000
    max_delay_ms: int = 2 * 3_600_000
    jitter: bool = True
    attempt_timeout_ms: int = 5_000
    max_retry_after_s: float = 3_600.0


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


class Subscription(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """Routes events of ``event_type`` on (``method``, ``path``) to a function.

    Beyond the original's fields (all optional, left out of the JSON when default):
    ``delivery`` is ``"at-least-once"`` (durable, retried; the default) or
    ``"at-most-once"`` (the original's in-memory path); ``retry_policy`` overrides the
    default :class:`RetryPolicy`; ``ordered`` delivers events with the same CloudEvents
    ``partitionkey`` one at a time, in order; ``filter`` is an EventBridge-style event
    pattern an event must match to be delivered (docs/filters.md).
    """

    space: str
    subscription_id: str
    type: str  # "async" | "sync"
    event_type: str
    function_id: str
    path: str
    method: str
    metadata: dict[str, str] | None = None
    delivery: str = "at-least-once"
    retry_policy: RetryPolicy | None = None
    ordered: bool = False
    filter: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.subscription_id


class Cors(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """CORS settings for one (method, path) on the Events API."""

    space: str
    cors_id: str
    method: str
    path: str
    allowed_origins: list[str]
    allowed_methods: list[str]
    allowed_headers: list[str]
    allow_credentials: bool  # no default: the original always sends it
    metadata: dict[str, str] | None = None

    @property
    def key(self) -> str:
        return self.cors_id


Entity = EventType | Function | Subscription | Cors

ENTITY_TYPES: Final[dict[Kind, type[Entity]]] = {
    "eventtypes": EventType,
    "functions": Function,
    "subscriptions": Subscription,
    "cors": Cors,
}

_encoder = msgspec.json.Encoder()
_decoders: dict[Kind, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(cls) for kind, cls in ENTITY_TYPES.items()
}


def encode_entity(entity: Entity) -> bytes:
    """The entity as compact JSON (the store's and the wire's representation)."""
    return _encoder.encode(entity)


def decode_entity(kind: Kind, raw: bytes) -> Entity:
    """Decode what :func:`encode_entity` wrote for an entity of ``kind``."""
    entity: Entity = _decoders[kind].decode(raw)
    return entity
