"""Who may emit into a space, and how fast: the Events API's key check and rate limits.

The space of a request is the first segment of its routing path (``/<space>/…``; for
``<space>.localhost`` or ``--domain`` hosts the first label, already made that prefix).
Only a claimed space whose settings say ``emit_requires_key`` asks for a key; public
spaces and unclaimed paths pass without a lookup beyond one dict ``get``.

A key travels as ``X-Api-Key: <key>`` or ``Authorization: Bearer <key>``. When both are
sent, ``X-Api-Key`` is the gateway's and ``Authorization`` is left to the function. The
header that carried a valid key is removed from the request before it becomes an event,
so the key never reaches functions, system-event subscribers or logs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from eventgateway.auth.base import Authenticator, Principal
from eventgateway.auth.ratelimit import DEFAULT_MAX_BUCKETS, BucketTable, RateLimit, acquire
from eventgateway.errors import ForbiddenError, TooManyRequestsError, UnauthorizedError
from eventgateway.settings import Limits

__all__ = [
    "DEFAULT_KEY_RATE",
    "DEFAULT_SPACE_RATE",
    "EmitGrant",
    "EmitRateLimiter",
    "authorize_emit",
    "emit_rate_limiter",
    "space_of",
]

# With auth on and no flag given. A key gets the whole space's budget by default: the
# space limit caps the sum, the key limit only matters when set lower (or for the
# operator key, which is one budget across all spaces).
DEFAULT_SPACE_RATE: Final = RateLimit(1_000.0, 2_000)
DEFAULT_KEY_RATE: Final = RateLimit(1_000.0, 2_000)

# A path segment can be tens of KiB; bucket keys are cut so the tables stay small in bytes
# too. Longer names share a bucket only with names sharing this whole prefix.
_MAX_BUCKET_KEY: Final = 256
_HOW: Final = "send it as 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'"
WWW_AUTHENTICATE: Final = (b"www-authenticate", b'Bearer realm="eventgateway"')


def space_of(route_path: str) -> str:
    """The space a routing path belongs to: its first segment (``""`` for ``/``)."""
    return route_path[1:].partition("/")[0]


@dataclass(frozen=True, slots=True)
class EmitGrant:
    """A valid key for a private space, and the request header that carried it."""

    principal: Principal
    header: str  # lower-case name, to strip before the request becomes an event


def _presented(headers: dict[str, str]) -> tuple[str, str] | None:
    api_key = headers.get("x-api-key", "").strip()
    if api_key:
        return api_key, "x-api-key"
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return token, "authorization"
    return None


def authorize_emit(auth: Authenticator, space: str, headers: dict[str, str]) -> EmitGrant | None:
    """Check that a request may emit into ``space``.

    Args:
        auth: the gateway's key ring.
        space: the request's space (:func:`space_of`).
        headers: the request headers, names in lower case.

    Returns:
        ``None`` when the space needs no key (public or unclaimed); the grant otherwise.

    Raises:
        UnauthorizedError: the space is private and no key, or no valid key, was sent.
        ForbiddenError: the key is valid but not for emitting into this space.
    """
    settings = auth.space(space)
    if settings is None or not settings.emit_requires_key:
        return None
    presented = _presented(headers)
    if presented is None:
        raise UnauthorizedError(
            f'Space "{space}" is private: emitting needs an API key with the emit scope; {_HOW}.'
        )
    token, header = presented
    principal = auth.authenticate(token)
    if principal is None:
        raise UnauthorizedError(
            f'The API key is not valid (unknown, revoked or expired). Space "{space}" '
            f"needs a key with the emit scope; {_HOW}."
        )
    if not principal.allows(space, "emit"):
        if principal.space != space:
            reason = f'it belongs to space "{principal.space}"'
        else:
            scopes = ", ".join(sorted(principal.scopes)) or "none"
            reason = f"it lacks the emit scope (it has: {scopes})"
        raise ForbiddenError(
            f'API key "{principal.key_id}" may not emit events into space "{space}": {reason}.'
        )
    return EmitGrant(principal, header)


class EmitRateLimiter:
    """Per-space and per-key token buckets for the Events API.

    A batch counts as its number of events. The key's bucket applies only when a key was
    required and checked (a private space); headers sent to a public space belong to the
    function and are not interpreted.

    Args:
        space: the limit of each space (``RateLimit.UNLIMITED`` for none).
        key: the limit of each API key.
        clock: monotonic seconds; replaceable in tests.
        max_buckets: buckets kept per table before idle ones are dropped.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        space: RateLimit,
        key: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        self.spaces = None if space.unlimited else BucketTable(space, max_buckets=max_buckets)
        self.keys = None if key.unlimited else BucketTable(key, max_buckets=max_buckets)
        self.clock = clock

    def check(self, space: str, key_id: str | None, n: int) -> None:
        """Spend ``n`` events of the space's (and the key's) budget.

        Raises:
            TooManyRequestsError: a budget is spent; ``retry_after_s`` says when to retry.
        """
        spaces, keys = self.spaces, self.keys
        space = space[:_MAX_BUCKET_KEY]
        if keys is None or key_id is None:
            if spaces is None:
                return
            wait_s = spaces.try_take(space, n, self.clock())
        elif spaces is None:
            wait_s = keys.try_take(key_id, n, self.clock())
        else:
            wait_s = acquire(n, self.clock(), ((spaces, space), (keys, key_id)))
        if wait_s == 0:
            return
        retry_after_s = max(1, math.ceil(wait_s))
        raise TooManyRequestsError(
            f"Rate limit exceeded for {self._which(space, key_id, n)}; "
            f"retry after {retry_after_s} s.",
            retry_after_s=retry_after_s,
        )

    def _which(self, space: str, key_id: str | None, n: int) -> str:
        now = self.clock()
        if self.spaces is not None and self.spaces.wait_s(space, n, now) > 0:
            return f'space "{space}" ({self.spaces.limit.per_s:g} events/s)'
        assert self.keys is not None  # one of the two refused
        return f'API key "{key_id}" ({self.keys.limit.per_s:g} events/s)'


def emit_rate_limiter(limits: Limits, *, auth: bool) -> EmitRateLimiter | None:
    """The Events API's rate limiter for these settings; ``None`` when nothing is limited.

    A limit left unset (``None``) is :data:`DEFAULT_SPACE_RATE` / :data:`DEFAULT_KEY_RATE`
    with auth on and unlimited without: an open gateway keeps the original's behaviour.
    """
    space = limits.rate_limit_space
    key = limits.rate_limit_key
    if space is None:
        space = DEFAULT_SPACE_RATE if auth else RateLimit.UNLIMITED
    if key is None:
        key = DEFAULT_KEY_RATE if auth else RateLimit.UNLIMITED
    if space.unlimited and key.unlimited:
        return None
    return EmitRateLimiter(space, key)
