"""The eventgateway SDK: what functions and clients import; no server code.

* :class:`EventGateway` (blocking) and :class:`AsyncEventGateway` (asyncio) emit events
  and drive the Configuration API; they raise :class:`GatewayError`, and an emit returns
  an :class:`EmitResult`.
* :class:`WebhookVerifier` checks the Standard Webhooks signatures the gateway puts on
  deliveries to functions with ``signingSecrets``.

The two clients (and httpx) are imported on first use, so a function that only verifies
webhooks does not pay for them at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventgateway.sdk._wire import EmitResult, GatewayError
from eventgateway.sdk.webhooks import WebhookVerificationError, WebhookVerifier, generate_secret

if TYPE_CHECKING:
    from eventgateway.sdk.client import AsyncEventGateway
    from eventgateway.sdk.sync import EventGateway

__all__ = [
    "AsyncEventGateway",
    "EmitResult",
    "EventGateway",
    "GatewayError",
    "WebhookVerificationError",
    "WebhookVerifier",
    "generate_secret",
]


def __getattr__(name: str) -> Any:
    value: Any
    if name == "AsyncEventGateway":
        from eventgateway.sdk import client

        value = client.AsyncEventGateway
    elif name == "EventGateway":
        from eventgateway.sdk import sync

        value = sync.EventGateway
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
