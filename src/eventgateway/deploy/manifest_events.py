"""``functions.<key>.events`` of a resolved ``serverless.yml`` → subscription specs.

Both styles of the Serverless plugin (contract §6.1) are read: the current one
(``type: sync|async`` + ``eventType``) and the legacy one (``event: http`` → sync
``http.request``, default method GET; ``event: <name>`` → async ``<name>``). Paths are
stored under ``/<space>`` the way the plugin stored them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from eventgateway.deploy.manifest_source import Source
from eventgateway.deploy.model import CorsSpec, FunctionSpec, SubscriptionSpec
from eventgateway.deploy.variables import KeyPath, format_path
from eventgateway.errors import ConfigError
from eventgateway.model.delivery_options import DELIVERY_MODES
from eventgateway.model.validate import METHODS
from eventgateway.routing.filters import FilterError, compile_filter

__all__ = ["EVENT_KEYS", "AuthorizerUse", "read_events"]

EVENT_KEYS: Final = frozenset(
    {
        "type", "eventType", "path", "method", "cors", "event",
        "retryPolicy", "delivery", "ordered", "authorizer", "filter",
    }
)  # fmt: skip
_CORS_KEYS: Final = frozenset({"origins", "methods", "headers", "allowCredentials"})
_ASYNC_ONLY: Final = ("retryPolicy", "delivery", "ordered", "filter")
_EVENT_TYPE: Final = re.compile(r"[a-zA-Z0-9.\-_]+")  # the gateway's event type rule
_BAD_PATH: Final = re.compile(r"[\s?#]")


@dataclass(frozen=True, slots=True)
class AuthorizerUse:
    """``authorizer: <functionKey>`` on an event: that event type's authorizer."""

    event_type: str
    function_key: str
    path: KeyPath


def read_events(
    value: Any, path: KeyPath, function: FunctionSpec, space: str, src: Source
) -> tuple[list[tuple[SubscriptionSpec, KeyPath]], list[AuthorizerUse]]:
    """The ``eventgateway`` events of one function (others are ignored with a warning).

    Returns:
        Each subscription with the key path of its event, and the authorizers named.

    Raises:
        ConfigError: an ``eventgateway`` event is invalid.
    """
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise src.error(path, "must be a list of events, e.g. - eventgateway: {…}")
    subscriptions: list[tuple[SubscriptionSpec, KeyPath]] = []
    authorizers: list[AuthorizerUse] = []
    for index, item in enumerate(value):
        at = (*path, index)
        if isinstance(item, dict) and "eventgateway" in item:
            if len(item) > 1:
                others = ", ".join(str(key) for key in item if key != "eventgateway")
                raise src.error(
                    at,
                    f"has {others} next to eventgateway; indent them under eventgateway: "
                    "(one event kind per list item)",
                )
            subscription, authorizer = _subscription(item["eventgateway"], at, function, space, src)
            subscriptions.append((subscription, at))
            if authorizer is not None:
                authorizers.append(authorizer)
            continue
        kind = next(iter(item), "?") if isinstance(item, dict) else item
        src.warn(at, f"ignored: eg only deploys eventgateway events (this one is {kind!s:.40})")
    return subscriptions, authorizers


def _kind(
    body: dict[str, Any], at: KeyPath, src: Source
) -> tuple[Literal["async", "sync"], str, str]:
    """The subscription type, event type and default method, in either style."""
    legacy = body.get("event")
    if legacy is not None:
        if "type" in body or "eventType" in body:
            raise src.error(
                (*at, "event"),
                "mixes the legacy event: with type:/eventType:; keep one style, "
                "e.g. type: async and eventType: user.created",
            )
        name = src.text(legacy, (*at, "event"), required=True) or ""
        if name == "http":
            return "sync", "http.request", "GET"
        return "async", name, "POST"
    kind = body.get("type")
    if kind not in ("sync", "async"):
        detail = "is required" if kind is None else f"is {kind!r}"
        raise src.error(
            (*at, "type"),
            f"{detail}; use async (the event is delivered later) or sync (HTTP request/response)",
        )
    event_type = src.text(body.get("eventType"), (*at, "eventType"), required=True) or ""
    return kind, event_type, "POST"


def _cors(value: Any, at: KeyPath, src: Source) -> CorsSpec | None:
    if value is None or value is False:
        return None
    if value is True:
        return CorsSpec()
    cors = src.mapping(value, at)
    src.check_keys(cors, at, _CORS_KEYS)
    credentials = cors.get("allowCredentials")
    if credentials is not None and not isinstance(credentials, bool):
        raise src.error((*at, "allowCredentials"), f"must be true or false, got {credentials!r}")

    def strings(key: str) -> tuple[str, ...] | None:
        found = cors.get(key)
        return None if found is None else src.strings(found, (*at, key))

    return CorsSpec(
        allowed_origins=strings("origins"),
        allowed_methods=strings("methods"),
        allowed_headers=strings("headers"),
        allow_credentials=credentials,
    )


def _async_options(body: dict[str, Any], at: KeyPath, kind: str, src: Source) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key in _ASYNC_ONLY:
        value = body.get(key)
        if value is None:
            continue
        if kind == "sync":
            raise src.error(
                (*at, key), "applies only to async subscriptions; remove it or use type: async"
            )
        if key == "retryPolicy" and not isinstance(value, dict):
            raise src.error(
                (*at, key), f"must be a mapping (maxAttempts:, backoff:, …), got {value!r}"
            )
        if key == "delivery" and value not in DELIVERY_MODES:
            raise src.error((*at, key), f"must be at-least-once or at-most-once, got {value!r}")
        if key == "ordered" and not isinstance(value, bool):
            raise src.error((*at, key), f"must be true or false, got {value!r}")
        if key == "filter":
            _check_filter(value, (*at, key), src)
        options[key] = value
    return options


def _check_filter(value: Any, path: KeyPath, src: Source) -> None:
    """The gateway's own check of the pattern, so that its errors point at the file."""
    if not isinstance(value, dict):
        raise src.error(path, f"must be a mapping (an event pattern), got {value!r}")
    try:
        compile_filter(value, field=format_path(path))
    except FilterError as exc:
        # The message starts with the key path, down into the pattern.
        raise ConfigError(f"{src.name}:{src.line(path)}: {exc}") from exc


def _subscription(
    value: Any, event: KeyPath, function: FunctionSpec, space: str, src: Source
) -> tuple[SubscriptionSpec, AuthorizerUse | None]:
    at = (*event, "eventgateway")
    body = src.mapping(value, at)
    if not body:
        raise src.error(at, "is empty; give it type: async and eventType: <name>")
    src.check_keys(body, at, EVENT_KEYS)
    kind, event_type, method = _kind(body, at, src)
    if not _EVENT_TYPE.fullmatch(event_type):
        key = "event" if "event" in body else "eventType"
        raise src.error(
            (*at, key),
            f"event type {event_type!r} may hold only letters, digits, '.', '-' and '_'",
        )
    given = src.text(body.get("method"), (*at, "method"))
    if given is not None:
        method = given.upper()
        if method not in METHODS:
            raise src.error((*at, "method"), f"method {given!r} is not one of {', '.join(METHODS)}")
    path = src.text(body.get("path"), (*at, "path")) or "/"
    if not path.startswith("/"):
        path = "/" + path
    if _BAD_PATH.search(path):
        raise src.error(
            (*at, "path"), f"path {path!r} may not hold spaces, '?' or '#'; give the path only"
        )
    cors = _cors(body.get("cors"), (*at, "cors"), src)
    if cors is not None and kind == "async":
        raise src.error(
            (*at, "cors"),
            "CORS applies only to sync subscriptions (HTTP); remove cors: or use type: sync",
        )
    authorizer_key = src.text(body.get("authorizer"), (*at, "authorizer"))
    subscription = SubscriptionSpec(
        function_id=function.function_id,
        type=kind,
        event_type=event_type,
        path=f"/{space}{path}",
        method=method,
        cors=cors,
        options=_async_options(body, at, kind, src),
        where=format_path(event),
    )
    if authorizer_key is None:
        return subscription, None
    return subscription, AuthorizerUse(event_type, authorizer_key, (*at, "authorizer"))
