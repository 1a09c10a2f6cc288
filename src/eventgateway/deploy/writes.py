"""One write of a plan on the gateway (:func:`send`), and the error naming a refused one
(:func:`failure`). Used by :mod:`eventgateway.deploy.apply` to apply a plan and by
:mod:`eventgateway.deploy.rollback` to undo part of one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from eventgateway.deploy.plan_bodies import subscription_options
from eventgateway.deploy.plan_types import Action
from eventgateway.errors import ConfigError

if TYPE_CHECKING:
    from eventgateway.sdk._wire import GatewayError
    from eventgateway.sdk.sync import EventGateway

__all__ = ["failure", "send"]

_SYNC_TAKEN: Final = (
    "a subscription for that endpoint and method already exists in another service "
    "or space; change the path or method, or remove it there"
)


def send(gateway: EventGateway, action: Action) -> None:
    """Perform ``action`` with one request.

    Raises:
        GatewayError: the gateway refused it, or could not be reached.
    """
    body: dict[str, Any] = dict(action.body or {})
    rid = action.resource_id
    metadata = body.pop("metadata", None)
    if action.kind == "function":
        if action.op == "delete":
            gateway.delete_function(rid)
            return
        write = gateway.create_function if action.op == "create" else gateway.update_function
        fid, type_, provider = body.pop("functionId"), body.pop("type"), body.pop("provider")
        write(fid, type_, provider, metadata=metadata, **body)
    elif action.kind == "eventtype":
        if action.op == "delete":
            gateway.delete_event_type(rid)
            return
        write_type = (
            gateway.create_event_type if action.op == "create" else gateway.update_event_type
        )
        write_type(body["name"], authorizer_id=body.get("authorizerId"), metadata=metadata)
    elif action.kind == "subscription":
        if action.op == "delete":
            gateway.unsubscribe(rid)
        elif action.op == "update":
            gateway.update_subscription(rid, dict(action.body or {}))
        else:
            gateway.subscribe(
                body["eventType"],
                body["functionId"],
                type=body["type"],
                path=body["path"],
                method=body["method"],
                metadata=metadata,
                **subscription_options(body),
            )
    elif action.op == "delete":
        gateway.delete_cors(rid)
    elif action.op == "update":
        gateway.update_cors(rid, dict(action.body or {}))
    else:
        gateway.create_cors(
            body["method"],
            body["path"],
            allowed_origins=body.get("allowedOrigins"),
            allowed_methods=body.get("allowedMethods"),
            allowed_headers=body.get("allowedHeaders"),
            allow_credentials=body.get("allowCredentials"),
            metadata=metadata,
        )


def failure(action: Action, exc: GatewayError) -> ConfigError:
    """The error for ``action`` refused with ``exc``: what was being done, and the
    gateway's own words (``creating function f: Function doesn't validate. …``)."""
    what = f"{action.verb} {action.kind} {action.name}"
    sync = action.kind == "subscription" and (action.body or {}).get("type") == "sync"
    if action.op == "create" and sync and exc.status == 409:
        return ConfigError(f"{what}: {_SYNC_TAKEN} ({exc.message})")
    return ConfigError(f"{what}: {exc.message}")
