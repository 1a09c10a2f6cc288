"""Token buckets: how many events a space or a key may send, and when it may send more.

Pure: no clock of its own. Every call takes ``now`` (seconds on any monotonic clock), so
the rules are table-tested without sleeping.

A bucket holds up to ``burst`` tokens and gains ``per_s`` tokens a second; sending ``n``
events takes ``n`` tokens. A request larger than the whole burst (a big batch) is let
through once the bucket is full and leaves the bucket in debt, so no request is refused
forever while the long-run rate still holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Final

from eventgateway.errors import ConfigError

__all__ = ["BucketTable", "RateLimit", "acquire"]

DEFAULT_MAX_BUCKETS: Final = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A sustained rate and the burst allowed above it; ``per_s == 0`` means unlimited.

    .. versionadded:: 0.1.0
    """

    per_s: float
    burst: int

    UNLIMITED: ClassVar[RateLimit]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_s) and self.per_s >= 0):
            raise ConfigError(f"rate {self.per_s!r} must be a number of events/s ≥ 0")
        if self.per_s > 0 and self.burst < 1:
            raise ConfigError(f"burst {self.burst!r} must be at least 1 event")

    @property
    def unlimited(self) -> bool:
        """Whether this limit lets everything through."""
        return self.per_s == 0

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``RATE[/BURST]`` in events/s, e.g. ``1000/2000``; BURST defaults to 2 × RATE.

        ``0`` is unlimited.

        Raises:
            ConfigError: the text is not of that form, or a number is out of range.
        """
        rate_text, slash, burst_text = text.strip().partition("/")
        try:
            per_s = float(rate_text)
            if not math.isfinite(per_s) or (slash and not burst_text):
                raise ValueError(text)
            burst = int(burst_text) if slash else max(1, math.ceil(2 * per_s))
        except ValueError:
            raise ConfigError(
                f"rate limit {text!r} is not RATE[/BURST] in events/s, e.g. '1000/2000' or '0'"
            ) from None
        if per_s == 0:
            return cls.UNLIMITED
        return cls(per_s, burst)

    def __str__(self) -> str:
        return "unlimited" if self.unlimited else f"{self.per_s:g}/{self.burst}"


RateLimit.UNLIMITED = RateLimit(0.0, 0)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class BucketTable:
    """One token bucket per key (a space name, a key id), all with the same limit.

    Memory stays bounded: past ``max_buckets`` keys, buckets that have refilled to full
    are dropped first (a full bucket is what a new one would be, so nothing is lost),
    then the oldest ones.

    .. versionadded:: 0.1.0
    """

    def __init__(self, limit: RateLimit, *, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        if limit.unlimited:
            raise ConfigError("an unlimited rate needs no bucket table")
        self.limit = limit
        self._per_s = limit.per_s  # copied: read on every request
        self._burst = float(limit.burst)
        self._max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._evict(now)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
            return bucket
        elapsed = now - bucket.updated
        if elapsed > 0:  # a clock that stands still or steps back refills nothing
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._per_s)
            bucket.updated = now
        return bucket

    def _evict(self, now: float) -> None:
        limit = self.limit
        idle = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * limit.per_s >= limit.burst
        ]
        for key in idle:
            del self._buckets[key]
        # Everything still active: drop the oldest quarter, so sweeps stay rare (amortised
        # O(1) per new key) even when someone invents a new key per request.
        excess = len(self._buckets) - (self._max_buckets * 3) // 4
        if excess > 0:
            for key in list(self._buckets)[:excess]:
                del self._buckets[key]

    def wait_s(self, key: str, n: int, now: float) -> float:
        """Seconds until ``n`` events may pass for ``key``; ``0.0`` when they may now."""
        bucket = self._refilled(key, now)
        needed = min(n, self._burst)
        if bucket.tokens >= needed:
            return 0.0
        return (needed - bucket.tokens) / self._per_s

    def take(self, key: str, n: int, now: float) -> None:
        """Spend ``n`` tokens of ``key``'s bucket (it may go into debt)."""
        self._refilled(key, now).tokens -= n

    def try_take(self, key: str, n: int, now: float) -> float:
        """Spend ``n`` tokens if they may pass: ``0.0``; else the seconds to wait."""
        bucket = self._refilled(key, now)
        needed = min(n, self._burst)
        if bucket.tokens >= needed:
            bucket.tokens -= n
            return 0.0
        return (needed - bucket.tokens) / self._per_s


def acquire(n: int, now: float, claims: tuple[tuple[BucketTable, str], ...]) -> float:
    """Take ``n`` tokens from every (table, key) in ``claims``, or from none of them.

    Returns ``0.0`` when taken, else the seconds until all of them would allow ``n``: a
    request refused by one limit must not spend the others' tokens.
    """
    wait = 0.0
    for table, key in claims:
        wait = max(wait, table.wait_s(key, n, now))
    if wait > 0:
        return wait
    for table, key in claims:
        table.take(key, n, now)
    return 0.0
