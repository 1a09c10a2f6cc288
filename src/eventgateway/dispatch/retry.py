"""When to try a failed delivery again: a pure policy, no I/O and no clock.

The dispatcher reports what happened (how many attempts, how old the delivery is, whether
the failure may pass, what ``Retry-After`` said) and :func:`decide` answers with a
:class:`RetryDecision`: retry after ``delay_s`` seconds, or give up and dead-letter with a
``reason`` a person can read in the delivery log. The knobs live in
:class:`~eventgateway.model.entities.RetryPolicy`, one per subscription.

With the default policy (5 s initial, exponential, 2 h cap, 25 attempts, 24 h max age)
the un-jittered delays are 5, 10, 20, … 5120 s, then 7200 s; their sum over 24 retries
(103,835 s ≈ 28.8 h) is more than the max age, so without jitter it is the 24 h max age
that ends the schedule: it gives up after 22 attempts (21 retries), ~22.8 h in. Full
jitter halves the expected delays, so a delivery that keeps failing usually uses up its
25 attempts first (~14 h on average).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from eventgateway.model.entities import RetryPolicy

__all__ = ["RetryDecision", "decide", "next_delay_s"]

Rand = Callable[[], float]
"""A source of uniform floats in ``[0, 1)``, like :func:`random.random`."""


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        retry: ``True`` to try again after ``delay_s``; ``False`` to give up.
        delay_s: seconds to wait before the next attempt (``0.0`` when giving up).
        reason: why; for a give-up it is the text the delivery log and dead letter keep,
            e.g. ``max attempts 25 reached`` or ``HTTP 404 is not retryable``.
    """

    retry: bool
    delay_s: float
    reason: str


def _format_s(seconds: float) -> str:
    # "86400" and "2592000", not "86400.0" or "2.592e+06"; "2.5" stays as is.
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _backoff_ms(policy: RetryPolicy, attempt: int) -> float:
    """The un-jittered, capped delay in milliseconds before attempt ``attempt + 1``."""
    cap = policy.max_delay_ms
    initial = policy.initial_delay_ms
    if policy.backoff == "exponential":
        if initial <= 0:
            return 0.0
        # Once 2**shift exceeds the cap the result is the cap anyway; bounding the shift
        # keeps a huge attempt number from building a huge integer (or a float overflow).
        shift = min(attempt - 1, int(cap).bit_length() + 1)
        raw: float = initial * (1 << shift)
    elif policy.backoff == "linear":
        raw = initial * attempt
    elif policy.backoff == "constant":
        raw = initial
    else:
        raise ValueError(
            f"unknown backoff {policy.backoff!r}; use 'exponential', 'linear' or 'constant'"
        )
    return float(min(raw, cap))


def next_delay_s(policy: RetryPolicy, attempt: int, *, rand: Rand = random.random) -> float:
    """The delay before attempt number ``attempt + 1``, in seconds.

    ``exponential`` waits ``initial * 2**(attempt-1)``, ``linear`` ``initial * attempt``
    and ``constant`` ``initial``; the result is capped at ``max_delay_ms``. With
    ``policy.jitter`` the capped delay is multiplied by ``rand()`` ("full jitter"), which
    spreads out the retries of many deliveries that failed together.

    Args:
        policy: the subscription's retry policy.
        attempt: attempts made so far (``1`` after the first failure).
        rand: a uniform ``[0, 1)`` source; pass a constant in tests.

    Returns:
        Seconds to wait, ``0 <= delay <= max_delay_ms / 1000``.

    Raises:
        ValueError: ``attempt`` is below 1, or ``policy.backoff`` is not a known name.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1 (attempts made so far), got {attempt}")
    delay_ms = _backoff_ms(policy, attempt)
    if policy.jitter:
        delay_ms *= rand()
    return delay_ms / 1000.0


def _not_retryable(status: int | None) -> str:
    if status is not None:
        return f"HTTP {status} is not retryable"
    return "the failure is not retryable"


def decide(
    policy: RetryPolicy,
    *,
    attempts_made: int,
    age_s: float,
    retryable: bool,
    status: int | None,
    retry_after_s: float | None,
    rand: Rand = random.random,
) -> RetryDecision:
    """Retry a failed delivery, or give up; checked in the order listed below.

    1. A failure that is not ``retryable`` (e.g. HTTP 404) gives up at once.
    2. ``attempts_made >= policy.max_attempts`` gives up.
    3. The delay is the backoff of :func:`next_delay_s`; a ``retry_after_s`` the function
       asked for (``Retry-After``, usually on 429 or 503, honoured whenever given) is
       capped at ``policy.max_retry_after_s`` and replaces the backoff when it is longer.
    4. If ``age_s + delay`` would pass ``policy.max_age_s``, give up rather than retry
       late; otherwise retry after the delay.

    Args:
        policy: the subscription's retry policy.
        attempts_made: attempts made so far, including the one that just failed (>= 1).
        age_s: seconds since the event was accepted, taken when the failed attempt
            ended (the retry cannot start sooner).
        retryable: whether another attempt may succeed (network error, timeout, 408,
            429, 5xx).
        status: the HTTP status of the failed attempt, if there was one (for the reason).
        retry_after_s: the delay the function asked for, if any.
        rand: a uniform ``[0, 1)`` source for jitter; pass a constant in tests.

    Returns:
        The :class:`RetryDecision`.

    Raises:
        ValueError: ``attempts_made`` is below 1, or ``policy.backoff`` is unknown.
    """
    if not retryable:
        return RetryDecision(retry=False, delay_s=0.0, reason=_not_retryable(status))
    if attempts_made >= policy.max_attempts:
        return RetryDecision(
            retry=False, delay_s=0.0, reason=f"max attempts {policy.max_attempts} reached"
        )
    delay_s = next_delay_s(policy, attempts_made, rand=rand)
    how = f"{policy.backoff} backoff"
    if retry_after_s is not None and not math.isnan(retry_after_s):
        asked_s = min(max(retry_after_s, 0.0), policy.max_retry_after_s)
        if asked_s > delay_s:
            delay_s = asked_s
            how = "Retry-After"
    if age_s + delay_s > policy.max_age_s:
        return RetryDecision(
            retry=False,
            delay_s=0.0,
            reason=f"max age {_format_s(policy.max_age_s)} s exceeded",
        )
    return RetryDecision(
        retry=True,
        delay_s=delay_s,
        reason=f"attempt {attempts_made} failed; retrying in {delay_s:.3f} s ({how})",
    )
