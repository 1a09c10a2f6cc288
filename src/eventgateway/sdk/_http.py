"""httpx glue shared by both clients: how transport failures become :class:`GatewayError`.

This is where httpx exceptions enter and are translated (STYLE habit 10); nothing above
the clients sees one.
"""

from __future__ import annotations

import os
import ssl
from typing import Final

import httpx

from eventgateway.sdk._wire import STREAM_IDLE_S, GatewayError

__all__ = ["USER_AGENT", "Verify", "failure", "stream_timeout", "tls_verify"]

USER_AGENT: Final = "eventgateway-sdk-python"
# Failures before a single byte of the request can have reached the gateway.
_UNSENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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
    """Whether the failed request may have reached the gateway, and the error to raise.

    The error has no ``status``: no answer came.
    """
    detail = str(exc) or "no detail"
    return not isinstance(exc, _UNSENT), GatewayError(f"{type(exc).__name__}: {detail}")


def stream_timeout(timeout_s: float) -> httpx.Timeout:
    """A log stream's timeouts: ``timeout_s`` to connect, a longer idle limit for reads."""
    return httpx.Timeout(timeout_s, read=max(timeout_s, STREAM_IDLE_S))
