"""eventgateway: an event gateway for microservices and functions, and its Python SDK.

The names here are the SDK's::

    from eventgateway import EventGateway

    EventGateway(url="http://localhost:4000", space="acme-crm").emit(
        event="user.created", data={"name": "Ada"}
    )

Importing ``eventgateway`` is cheap: every server module imports this package, so the
client (and httpx) load on first use of one of these names, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventgateway.sdk import AsyncEventGateway, EmitResult, EventGateway, GatewayError

__all__ = ["AsyncEventGateway", "EmitResult", "EventGateway", "GatewayError", "__version__"]

__version__ = "0.1.0"  # keep equal to pyproject.toml's version

_SDK_NAMES = frozenset({"AsyncEventGateway", "EmitResult", "EventGateway", "GatewayError"})


def __getattr__(name: str) -> Any:
    if name not in _SDK_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from eventgateway import sdk

    value = getattr(sdk, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
