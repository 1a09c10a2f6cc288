"""Reading a request body under a size limit, for the raw ASGI apps of both APIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BodyTooLarge", "ClientGone", "read_body"]

Receive = Callable[[], Awaitable[dict[str, Any]]]


class BodyTooLarge(Exception):
    """The body is over the limit (known from Content-Length, or while reading)."""


class ClientGone(Exception):
    """The client disconnected before the body was complete."""


def _declared_over(declared: str | bytes | None, limit: int) -> bool:
    # isascii: str.isdigit() takes "²", which int() refuses; and int() refuses 4,300
    # digits, while 19 are already more than any limit.
    return (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > limit)
    )


async def read_body(receive: Receive, limit: int, *, declared: str | bytes | None) -> bytes:
    """The whole body of the request, at most ``limit`` bytes.

    ``declared`` is the Content-Length header's value, if any: a body it says is too
    large is refused before a byte is read.

    Raises:
        BodyTooLarge: the body is, or is declared to be, over ``limit`` bytes.
        ClientGone: the client went away first (a partial body must not be used).
    """
    if _declared_over(declared, limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
