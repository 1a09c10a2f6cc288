"""Request bodies for a deploy, their canonical form, and readable differences (pure).

The gateway normalises what it stores (defaults filled in or left out, methods
upper-cased, ids derived from fields), so a body is never compared with an echo as is:
both go through the gateway's own parsers (:mod:`eventgateway.model.validate`) first.
An unchanged redeploy therefore compares equal field for field, and a body the gateway
would refuse is caught before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec

from eventgateway.deploy.model import CorsSpec, FunctionSpec, SubscriptionSpec
from eventgateway.errors import ConfigError, ValidationError
from eventgateway.model.entities import Entity
from eventgateway.model.validate import (
    Body,
    parse_cors,
    parse_event_type,
    parse_function,
    parse_subscription,
)

__all__ = [
    "Kind",
    "Resource",
    "canonical",
    "changes",
    "cors_body",
    "event_type_body",
    "function_body",
    "function_summary",
    "subscription_body",
    "subscription_name",
    "subscription_options",
]

Kind = Literal["function", "subscription", "eventtype", "cors"]
Resource = Mapping[str, Any]
"""One resource as the Configuration API takes or lists it (camelCase JSON keys)."""

# Bodies are parsed for one space; the space is not part of what is compared.
_SPACE: Final = "deploy-plan"
_PARSERS: Final[dict[Kind, Callable[[str, Body], Entity]]] = {
    "function": parse_function,
    "subscription": parse_subscription,
    "eventtype": parse_event_type,
    "cors": parse_cors,
}
_HASH = re.compile(r"[0-9a-f]{64}")
# Values never printed in a plan: they may be credentials.
_SECRET_KEYS: Final = ("awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken")
_SUBSCRIPTION_FIELDS: Final = frozenset(
    {"type", "eventType", "functionId", "path", "method", "metadata"}
)


def function_body(
    spec: FunctionSpec, metadata: Mapping[str, str], bundle_id: str | None
) -> dict[str, Any]:
    """The ``POST/PUT …/functions`` body; runtime functions get ``provider.bundle``."""
    provider = dict(spec.provider)
    if spec.needs_bundle:
        if bundle_id is None:
            raise ConfigError(
                f"function {spec.key}: a {spec.type} function runs uploaded code, but no "
                "bundle was built for this deploy"
            )
        provider["bundle"] = bundle_id
    return {
        **spec.options,
        "functionId": spec.function_id,
        "type": spec.type,
        "provider": provider,
        "metadata": dict(metadata),
    }


def subscription_body(spec: SubscriptionSpec, metadata: Mapping[str, str]) -> dict[str, Any]:
    """The ``POST …/subscriptions`` body (also the ``PUT`` body: it repeats the identity)."""
    return {
        **spec.options,
        "type": spec.type,
        "eventType": spec.event_type,
        "functionId": spec.function_id,
        "path": spec.path,
        "method": spec.method,
        "metadata": dict(metadata),
    }


def subscription_options(body: Resource) -> dict[str, Any]:
    """The extension fields of a subscription body (``delivery``, ``retryPolicy``…)."""
    return {key: value for key, value in body.items() if key not in _SUBSCRIPTION_FIELDS}


def event_type_body(
    name: str, authorizer_id: str | None, metadata: Mapping[str, str] | None
) -> dict[str, Any]:
    """The ``POST/PUT …/eventtypes`` body; no ``authorizerId`` key means none."""
    body: dict[str, Any] = {"name": name}
    if authorizer_id is not None:
        body["authorizerId"] = authorizer_id
    if metadata:
        body["metadata"] = dict(metadata)
    return body


def cors_body(
    spec: SubscriptionSpec, cors: CorsSpec, metadata: Mapping[str, str]
) -> dict[str, Any]:
    """The ``POST/PUT …/cors`` body for a subscription's ``cors:``; unset fields are left
    out so the gateway's defaults apply."""
    body: dict[str, Any] = {"method": spec.method, "path": spec.path}
    lists = (
        ("allowedOrigins", cors.allowed_origins),
        ("allowedMethods", cors.allowed_methods),
        ("allowedHeaders", cors.allowed_headers),
    )
    body.update({key: list(value) for key, value in lists if value is not None})
    if cors.allow_credentials is not None:
        body["allowCredentials"] = cors.allow_credentials
    body["metadata"] = dict(metadata)
    return body


def canonical(kind: Kind, body: Resource) -> dict[str, Any]:
    """``body`` as the gateway would store and echo it, without ``space``.

    Raises:
        ValidationError: the gateway would refuse ``body``, with its message.
    """
    entity = _PARSERS[kind](_SPACE, dict(body))
    stored: dict[str, Any] = msgspec.to_builtins(entity)
    stored.pop("space", None)
    return stored


def _canonical_echo(kind: Kind, echo: Resource) -> dict[str, Any]:
    try:
        return canonical(kind, echo)
    except ValidationError:
        # Stored by a gateway with other rules: compare as listed, which at worst
        # rewrites the resource with today's body.
        return {key: value for key, value in echo.items() if key != "space"}


def changes(kind: Kind, echo: Resource, body: Resource) -> tuple[str, ...]:
    """What writing ``body`` over the listed ``echo`` would change, one entry per field
    (``provider.bundle 3f2a1c… → 9b0e4d…``); empty when nothing would."""
    before = _flatten(_canonical_echo(kind, echo))
    after = _flatten(canonical(kind, body))
    keys = [*after, *(key for key in before if key not in after)]
    return tuple(
        _change(key, before.get(key), after.get(key))
        for key in keys
        if before.get(key) != after.get(key)
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, member in value.items():
        flat.update(_flatten(member, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _is_secret(key: str) -> bool:
    return (
        key.startswith(("signingSecrets", "provider.environment."))
        or key.rsplit(".", 1)[-1] in _SECRET_KEYS
    )


def _change(key: str, before: Any, after: Any) -> str:
    if _is_secret(key):
        verb = "added" if before is None else "removed" if after is None else "changed"
        return f"{key} {verb}"
    return f"{key} {_show(before)} → {_show(after)}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value[:6] + "…" if _HASH.fullmatch(value) else value
    return json.dumps(value, ensure_ascii=False)


def function_summary(body: Resource) -> str:
    """``python3.11, handler.handler``, ``http, https://…`` or ``awssqs, https://sqs…``: what
    a new function runs, or where its events go."""
    stored = canonical("function", body)
    provider = stored["provider"]
    if "handler" in provider:
        return f"{provider['runtime']}, {provider['handler']}"
    for target in ("url", "queueUrl", "streamName", "deliveryStreamName", "arn"):
        if target in provider:
            return f"{stored['type']}, {provider[target]}"
    return str(stored["type"])


def subscription_name(resource: Resource) -> str:
    """``async user.created POST /acme-crm/``: a subscription as a reader knows it."""
    method = str(resource.get("method") or "POST").upper()
    return f"{resource['type']} {resource['eventType']} {method} {resource.get('path') or '/'}"
