"""httpx glue shared by both clients: sending with retries, and how transport failures
become :class:`GatewayError`.

This is where httpx exceptions enter and are translated (STYLE habit 10); nothing above
the clients sees one. When to try again is decided by :mod:`~eventgateway.sdk._retry`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import ssl
import time
from typing import Final, TypeVar

import httpx

from eventgateway.sdk import _retry
from eventgateway.sdk._wire import STREAM_IDLE_S, Call, GatewayError, Reply

__all__ = [
    "USER_AGENT",
    "Verify",
    "failure",
    "send",
    "send_async",
    "stream_timeout",
    "tls_verify",
]

T = TypeVar("T")

USER_AGENT: Final = "eventgateway-sdk-python"
# Failures before the whole request can have reached the gateway: no connection, or a
# write that did not finish (httpcore raises these only for bytes it could not send, and
# the gateway acts on a request only once its body is complete).
_UNSENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


Verify = ssl.SSLContext | str | os.PathLike[str] | bool
"""How a client checks an ``https://`` gateway's certificate (see :func:`tls_verify`)."""


def tls_verify(verify: Verify) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for ours: a CA bundle path becomes a context trusting it.

    ``True`` trusts the usual public CAs, ``False`` checks nothing (tests only); httpx
    deprecated taking a path itself.
    """
    if isinstance(verify, str | os.PathLike):
        return ssl.create_default_context(cafile=os.fspath(verify))
    return verify


def failure(exc: httpx.TransportError) -> tuple[bool, GatewayError]:
    """Whether the failed request may have reached the gateway in full, and the error to
    raise.

    The error has no ``status``: no answer came.
    """
    detail = str(exc) or "no detail"
    try:
        request = exc.request
    except RuntimeError:  # httpx raises it when the error carries no request
        where = ""
    else:  # which of the gateway's URLs failed (a client may hold two: events, config)
        where = f" ({request.method} {request.url.copy_with(query=None)})"
    return not isinstance(exc, _UNSENT), GatewayError(f"{type(exc).__name__}: {detail}{where}")


def stream_timeout(timeout_s: float) -> httpx.Timeout:
    """A log stream's timeouts: ``timeout_s`` to connect, a longer idle limit for reads."""
    return httpx.Timeout(timeout_s, read=max(timeout_s, STREAM_IDLE_S))


async def send_async(http: httpx.AsyncClient, call: Call[T], retries: int) -> T:
    """``call`` sent on ``http`` until it is answered or no retry is left; its parsed reply.

    Raises:
        GatewayError: no answer (status ``None``), or what ``call.parse`` raises.
    """
    request = call.request
    for attempt in itertools.count():
        try:
            response = await http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                extensions=request.extensions,
            )
        except httpx.TransportError as exc:
            sent, error = failure(exc)
            delay_s = _retry.retry_delay_s(request, attempt, retries, sent=sent)
            if delay_s is None:
                raise error from exc
        else:
            reply = Reply(response.status_code, response.headers, response.content)
            delay_s = _retry.retry_delay_s(request, attempt, retries, reply=reply)
            if delay_s is None:
                return call.parse(reply)
        await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count() is endless


def send(http: httpx.Client, call: Call[T], retries: int) -> T:
    """:func:`send_async` for the blocking client."""
    request = call.request
    for attempt in itertools.count():
        try:
            response = http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                extensions=request.extensions,
            )
        except httpx.TransportError as exc:
            sent, error = failure(exc)
            delay_s = _retry.retry_delay_s(request, attempt, retries, sent=sent)
            if delay_s is None:
                raise error from exc
        else:
            reply = Reply(response.status_code, response.headers, response.content)
            delay_s = _retry.retry_delay_s(request, attempt, retries, reply=reply)
            if delay_s is None:
                return call.parse(reply)
        time.sleep(delay_s)
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count() is endless
