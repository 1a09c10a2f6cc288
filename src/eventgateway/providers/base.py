"""The ``Provider`` interface: one attempt at calling one function.

A provider sends ``body`` to the function and returns what came back. It raises
:class:`~eventgateway.errors.ProviderError` when there is no answer to return (network
error, timeout, an unsupported type); what an answer *means* (success, retry, failure) is
decided by ``dispatch/invoke.py``, because sync routes and async deliveries read the same
answer differently.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import msgspec

from eventgateway.model.entities import Function

__all__ = ["MAX_REPLY_BYTES", "Call", "Provider", "Reply"]

# The most a function may answer a caller waiting for the result (Lambda's own bound on a
# synchronous response); more would be held whole in memory for one request.
MAX_REPLY_BYTES = 6 * 1024 * 1024


# Structs, not dataclasses: one of each is made per attempt (see queue/base.py).
class Call(msgspec.Struct, frozen=True):
    """What to send: the body, its content type and any extra headers.

    ``sync``: a caller waits for the reply (a sync route, an invoke), so the reply is the
    result; an async delivery needs only its status.
    """

    body: bytes
    content_type: str = "application/cloudevents+json"
    headers: Sequence[tuple[str, str]] = ()
    timeout_s: float = 5.0
    sync: bool = False


class Reply(msgspec.Struct, frozen=True):
    """What the function answered. ``status`` is 200 for providers without HTTP status."""

    status: int
    body: bytes
    headers: Sequence[tuple[str, str]] = ()


class Provider(abc.ABC):
    """Calls functions of one ``type``."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire shared resources (a connection pool)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release shared resources."""

    def validate(self, function: Function) -> None:  # noqa: B027 - optional hook
        """Raise ``ValidationError`` if this function cannot be called here."""

    @abc.abstractmethod
    async def call(self, function: Function, call: Call) -> Reply:
        """Make one attempt; ``ProviderError`` if no reply could be had."""
