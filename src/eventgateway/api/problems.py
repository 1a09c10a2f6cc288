"""Errors → HTTP responses in the one shape every client reads.

Both APIs answer errors as ``{"errors":[{"message": "<text>"}]}`` followed by a newline
(the original wrote with Go's ``json.Encoder``, which adds it), with
``Content-Type: application/json``. :class:`~eventgateway.errors.HTTPError` subclasses
carry their status; a :class:`~eventgateway.errors.StoreError` is a 500 with its text, as
the original answered storage failures; anything else is a 500 with a fixed text, never a
traceback page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventgateway.errors import HTTPError, StorageFullError, StoreError, TooManyRequestsError

__all__ = [
    "EXCEPTION_HANDLERS",
    "INTERNAL_ERROR_MESSAGE",
    "error_body",
    "error_response",
    "response_for",
]

logger = logging.getLogger(__name__)

# An absolute path's directories (/var/lib/eg/queue.db → queue.db): the log keeps them.
_DIRECTORIES: Final = re.compile(r"(?<![\w/.])/(?:[^\s/:'\"]+/)+(?=[^\s/:'\"]+)")

INTERNAL_ERROR_MESSAGE: Final = "Internal Server Error"


class _Message(msgspec.Struct):
    message: str


class _Problem(msgspec.Struct):
    errors: list[_Message]


_encoder: Final = msgspec.json.Encoder()


def error_body(message: str) -> bytes:
    """``{"errors":[{"message": message}]}`` plus the trailing newline."""
    return _encoder.encode(_Problem(errors=[_Message(message)])) + b"\n"


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON error response with one message."""
    return Response(
        error_body(message), status_code=status, headers=headers, media_type="application/json"
    )


def response_for(exc: BaseException) -> Response:
    """The response for any exception raised while handling a request.

    :class:`HTTPError` → its status and message (``Retry-After`` for 429);
    :class:`StorageFullError` → 507; another :class:`StoreError` → 500 with its text
    (a file's directories left out: the client is not the operator); anything else →
    logged, 500, fixed text.
    """
    if isinstance(exc, TooManyRequestsError):
        return error_response(
            exc.status_code, exc.message, headers={"Retry-After": str(exc.retry_after_s)}
        )
    if isinstance(exc, HTTPError):
        return error_response(exc.status_code, exc.message)
    if isinstance(exc, StorageFullError):
        logger.warning("Storage full: %s", exc)  # the operator's to fix: no traceback
        return error_response(507, f"The gateway's disk is full: {_public(str(exc))}")
    if isinstance(exc, StoreError):
        logger.error("Storage failure: %s", exc, exc_info=exc)
        return error_response(500, _public(str(exc)))
    logger.error("Unexpected error while handling a request", exc_info=exc)
    return error_response(500, INTERNAL_ERROR_MESSAGE)


def _public(message: str) -> str:
    return _DIRECTORIES.sub("", message)


async def _handle(request: Request, exc: Exception) -> Response:
    del request
    return response_for(exc)


EXCEPTION_HANDLERS: Final = {HTTPError: _handle, StoreError: _handle, Exception: _handle}
"""Starlette ``exception_handlers`` for an app. Starlette re-raises exceptions that reach
its outermost (``Exception``) handler after answering, so handlers that must never raise
should also catch with :func:`response_for` themselves."""
