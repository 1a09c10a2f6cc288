"""How one ASGI app serves both listeners of a gateway, and the Configuration API's parts.

:class:`PortRouter` hands each request to the Events API or the Configuration API by the
local port it arrived on, and runs the gateway's lifespan. :class:`ConfigRouter` sends
Configuration API paths to the app that owns them; :class:`RefreshAfterWrite` makes a
write visible to this instance's routing before the client hears about it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from eventgateway.api.deliveries import is_deliveries_path
from eventgateway.api.events import CALLS_FUNCTION, Receive, Scope, Send
from eventgateway.api.invoke import is_invoke_path
from eventgateway.api.runtime import is_runtime_path
from eventgateway.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from eventgateway.app import Gateway

__all__ = ["ConfigRouter", "PortRouter", "RefreshAfterWrite"]

logger = logging.getLogger("eventgateway.app")

_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SHUTTING_DOWN: Final = (
    b'{"errors":[{"message":"The gateway is shutting down and could not finish this '
    b'request; retry it."}]}'
)


_CUT_CALL: Final = (
    b'{"errors":[{"message":"The gateway is shutting down and cut this function call off; '
    b'the function may have run already, so calling it again may run it twice."}]}'
)


async def _shutting_down(send: Send, *, called: bool) -> None:
    # A call cut off may have run the function: no Retry-After, so clients that retry
    # only a 503 carrying one (the SDKs) do not run it twice.
    body = _CUT_CALL if called else _SHUTTING_DOWN
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(() if called else ((b"retry-after", b"1"),)),
        (b"connection", b"close"),
    ]
    try:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the response had begun, or the client is gone
        logger.debug("the shutdown's 503 could not be sent", exc_info=True)


class RefreshAfterWrite:
    """Applies a config write to this process's routing table before answering it.

    Without this, a client that creates a subscription and emits at once could race the
    store watch; with it, this instance routes the change as soon as the client hears 2xx
    (other instances follow through the watch).
    """

    def __init__(self, app: Any, gateway: Gateway) -> None:
        self._app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _WRITE_METHODS
            or is_invoke_path(scope["path"])  # calls a function, changes no configuration
        ):
            await self._app(scope, receive, send)
            return

        async def send_after_refresh(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self._gateway.routing.catch_up()
            await send(message)

        await self._app(scope, receive, send_after_refresh)


class ConfigRouter:
    """The Configuration API: resources, the delivery log, bundles, function logs, invoke."""

    def __init__(self, config: Any, deliveries: Any, runtime: Any, invoke: Any) -> None:
        self._config = config
        self._deliveries = deliveries
        self._runtime = runtime
        self._invoke = invoke

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if is_deliveries_path(path):
                await self._deliveries(scope, receive, send)
                return
            if is_runtime_path(path):
                await self._runtime(scope, receive, send)
                return
            if is_invoke_path(path):
                await self._invoke(scope, receive, send)
                return
        await self._config(scope, receive, send)


class PortRouter:
    """Both listeners' ASGI app: requests go to the API of the port they came in on."""

    def __init__(self, gateway: Gateway, config_port: int) -> None:
        self._gateway = gateway
        self._config_port = config_port
        self._events = gateway.events_app
        self._config = gateway.config_app
        self.startup_error: Exception | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            server = scope.get("server")
            config = server is not None and server[1] == self._config_port
            try:
                await (self._config if config else self._events)(scope, receive, send)
            except asyncio.CancelledError:
                # uvicorn cancels the requests still running past --shutdown-timeout: they
                # are answered 503 (retry, another instance can serve it) rather than with
                # uvicorn's bare 500 and a logged traceback each.
                logger.warning(
                    "%s %s cut off by the shutdown (past --shutdown-timeout): answered 503",
                    scope.get("method"),
                    scope.get("path"),
                )
                called = bool(scope.get(CALLS_FUNCTION)) or is_invoke_path(scope["path"])
                await _shutting_down(send, called=called)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._gateway.start()
                except Exception as exc:
                    # A known cause (a setting, an unreachable store) is said once, by
                    # uvicorn, which logs the message below; anything else with its trace.
                    if not isinstance(exc, ConfigError | StoreError):
                        logger.exception("gateway failed to start")
                    self.startup_error = exc
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
