"""Query parameters shared by the Configuration API's apps: times and limits.

A time is RFC 3339 (``2026-11-26T18:00:00Z``), Unix seconds, or — where ``now_s`` is
given — a duration ago (``30s``, ``10m``, ``2h``, ``1d``). Errors name the parameter.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Final

from eventgateway.errors import ValidationError

__all__ = ["parse_limit", "parse_time"]

_DURATION: Final = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# RFC 3339 ends at year 9999. Nothing was received before 1970, so a negative time is a
# mistake (it would select everything), as is one no timestamp can reach.
_LAST_S: Final = 253402300799.0  # 9999-12-31T23:59:59Z


def _in_range(seconds: float, raw: object, name: str) -> float:
    if seconds < 0.0:
        raise ValidationError(f"{name} {raw!r} is before 1970-01-01T00:00:00Z (Unix time 0)")
    if seconds > _LAST_S:
        raise ValidationError(
            f"{name} {raw!r} is too far in the future: the latest is 9999-12-31T23:59:59Z"
        )
    return seconds


def parse_time(raw: str, name: str, *, now_s: float | None = None) -> float:
    """``raw`` as Unix seconds; ``ValidationError`` naming ``name`` if it is no time."""
    if now_s is None:
        forms = "use RFC 3339 (2026-11-26T18:00:00Z) or Unix seconds"
    else:
        forms = (
            "use RFC 3339 (2026-11-26T18:00:00Z), Unix seconds, "
            "or a duration such as 30s, 10m, 2h, 7d"
        )
    if now_s is not None and _DURATION.fullmatch(raw):
        ago_s = sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(raw))
        return max(0.0, now_s - ago_s)  # longer ago than 1970: from the beginning
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValidationError(f"{name} {raw!r} is not a time: {forms}")
        return _in_range(seconds, raw, name)
    try:
        parsed = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{name} {raw!r} is not a time: {forms}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return _in_range(parsed.timestamp(), raw, name)


def body_time(raw: str | float | None, name: str, *, now_s: float | None = None) -> float | None:
    """A JSON body's time member: a string as :func:`parse_time` reads it, or a number
    of Unix seconds; ``None`` when absent."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return parse_time(raw, name, now_s=now_s)
    # msgspec already refused numbers out of a float's range ("Number out of range").
    return _in_range(float(raw), raw, name)


def check_window(since: float | None, until: float | None) -> None:
    """Refuse a window that ends before it starts (it could select nothing)."""
    if since is not None and until is not None and until < since:
        raise ValidationError("until is before since: the window selects nothing")


def parse_limit(params: Mapping[str, str], *, default: int, maximum: int) -> int:
    """The ``limit`` parameter, from 1 to ``maximum``; ``default`` when absent."""
    raw = params.get("limit")
    if raw is None:
        return default
    # str.isdigit() also accepts digits like "²" that int() refuses.
    # len() first: int() refuses numbers of 4,300 digits and more.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not 1 <= int(raw) <= maximum:
        raise ValidationError(f"limit {raw!r} must be a whole number from 1 to {maximum}")
    return int(raw)
