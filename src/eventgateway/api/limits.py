"""Request limits of the Configuration API: header bytes, body bytes and JSON nesting.

The Events API checks the same :class:`~eventgateway.settings.Limits` itself, inline on its
hot path (``api/events.py``); this middleware applies them to every Configuration API
request before any handler runs, so no endpoint can forget them:

* headers over ``max_header_bytes`` (names plus values) → 431;
* a body over ``max_body_bytes`` → 413, from ``Content-Length`` before reading it, or
  while reading a chunked one;
* a body nesting arrays and objects deeper than ``max_json_depth`` → 400. Every
  Configuration API body is JSON, whatever its Content-Type says (the original decoded
  them all as JSON too), so every body is checked.

Requests for which ``own_body(path)`` is true (bundle uploads: zips with a limit of their
own) get the header check only, and their body is streamed to the handler untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from eventgateway.api.asgi_body import BodyTooLarge, ClientGone, read_body
from eventgateway.api.problems import error_body
from eventgateway.events.jsondepth import json_depth_exceeds
from eventgateway.settings import Limits

__all__ = ["RequestLimits"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLimits:
    """ASGI middleware refusing requests over the header, body and JSON depth limits.

    Args:
        app: the Configuration API app it guards.
        limits: ``max_header_bytes``, ``max_body_bytes`` and ``max_json_depth`` are used.
        own_body: tells, by path, which requests' bodies the handler limits itself.
    """

    def __init__(
        self,
        app: App,
        limits: Limits,
        *,
        own_body: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self._app = app
        self._limits = limits
        self._own_body = own_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limits = self._limits
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        size = sum(len(name) + len(value) for name, value in headers)
        if size > limits.max_header_bytes:
            await _refuse(
                send,
                431,
                f"Request headers are {size} bytes; the limit is {limits.max_header_bytes} bytes.",
            )
            return
        if self._own_body(scope["path"]):
            await self._app(scope, receive, send)
            return
        try:
            declared = next((v for k, v in headers if k == b"content-length"), None)
            body = await read_body(receive, limits.max_body_bytes, declared=declared)
        except BodyTooLarge:
            await _refuse(
                send, 413, f"Request body is over the limit of {limits.max_body_bytes} bytes."
            )
            return
        except ClientGone:
            return  # nobody to answer, and a partial body must not reach a handler
        if json_depth_exceeds(body, limits.max_json_depth):
            await _refuse(
                send,
                400,
                f"JSON body is nested too deeply: the limit is {limits.max_json_depth} levels "
                "of arrays and objects",
            )
            return
        await self._app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the client's own messages.

    Later calls still reach the client's channel, so a handler streaming a response (the
    log tail) hears ``http.disconnect`` when the client leaves.
    """
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _refuse(send: Send, status: int, message: str) -> None:
    body = error_body(message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
