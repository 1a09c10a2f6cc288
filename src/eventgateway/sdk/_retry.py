"""When the SDK tries a request again (pure, no I/O): 429/503 and transport failures.

Only what is safe whatever the route does is repeated by default: a request the gateway
refused (429/503 with ``Retry-After``) or never received in full (connection failures,
write and pool timeouts). A request that may have been acted on (read timeout, dropped
connection, 503 without ``Retry-After``) is repeated only when it is ``idempotent``: an
emit to a sync subscription runs the function once per copy, and the gateway's
de-duplication covers async at-least-once deliveries only.
"""

from __future__ import annotations

from typing import Final

from eventgateway.sdk._wire import Reply, Request

__all__ = ["BACKOFF_S", "MAX_WAIT_S", "RETRY_STATUSES", "retry_delay_s"]

BACKOFF_S: Final = 0.2
"""First retry delay; each later one doubles (0.2 s, 0.4 s, 0.8 s …)."""
MAX_WAIT_S: Final = 5.0
"""Longest wait between two attempts, also for a server's ``Retry-After``."""
RETRY_STATUSES: Final = frozenset({429, 503})


def retry_delay_s(
    request: Request,
    attempt: int,
    retries: int,
    *,
    reply: Reply | None = None,
    sent: bool | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None``: do not retry.

    Args:
        request: what was sent; its ``retry`` says what may be repeated.
        attempt: 0 for the first attempt.
        retries: retries allowed in all.
        reply: the answer, if one came: 429 and 503 with ``Retry-After`` are retried
            after that many seconds (at most :data:`MAX_WAIT_S`; the backoff when it is
            not a number); ``idempotent`` requests also without it.
        sent: for a transport failure, whether the request may have reached the server
            in full (``False`` for connection failures and write or pool timeouts): then
            only ``idempotent`` ones are retried.
    """
    if attempt >= retries or request.retry == "never":
        return None
    backoff_s = min(BACKOFF_S * 2.0**attempt, MAX_WAIT_S)
    if reply is not None:
        if reply.status not in RETRY_STATUSES:
            return None
        raw = reply.headers.get("retry-after")
        if raw is None and request.retry != "idempotent":
            # The gateway's rate-limit, full-queue and store refusals carry Retry-After;
            # a sync function's bare 503 may come after it acted.
            return None
        asked = _retry_after_s(raw)
        return backoff_s if asked is None else min(asked, MAX_WAIT_S)
    if sent and request.retry != "idempotent":
        return None
    return backoff_s


def _retry_after_s(raw: str | None) -> float | None:
    # Seconds only: an HTTP date would need the clock, and the gateway sends seconds.
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)
