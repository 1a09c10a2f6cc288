"""The values a subscription filter may hold, and the exact-value sets they compile to (pure).

Shared by :mod:`eventgateway.routing.filter_leaf` (value lists and operators) and
:mod:`eventgateway.routing.filters` (pattern objects): :class:`FilterError`, the
:data:`MISSING` marker, and the checks every number and scalar of a pattern passes.

Numbers a pattern holds must survive the trip to the delivery worker: its routing frames are
MessagePack, which carries integers of 64 bits only. Integers are therefore limited to
:data:`MIN_INT`…:data:`MAX_INT` (signed 64 bits); larger numbers can be written as
floats (``1.8e19``), and floats must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "MAX_INT",
    "MIN_INT",
    "MISSING",
    "Exact",
    "FilterError",
    "Scalar",
    "check_number",
    "check_scalar",
    "is_number",
    "json_kind",
]

MIN_INT: Final = -(2**63)
"""The smallest integer a filter may hold."""
MAX_INT: Final = 2**63 - 1
"""The largest integer a filter may hold."""


class FilterError(ValueError):
    """Raised when a filter pattern is invalid; the message names the field path."""


class _Missing:
    """The value of a field the event does not have (``null`` is a value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Scalar = Callable[[Any], bool]
"""A compiled operator: whether one scalar event value (string, number, bool, null) matches."""


def json_kind(value: Any) -> str:
    """The JSON word for ``value``'s type, for messages (``string``, ``object``…)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def is_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number (``True`` is not, though Python says so)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show_int(value: int) -> str:
    text = str(value) if value.bit_length() <= 256 else ""
    if text and len(text) <= 40:
        return text
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"an integer of about {digits} digits"


def check_number(value: int | float, where: str) -> None:
    """Refuse a number a filter cannot hold: a float that is not finite, or an integer
    outside :data:`MIN_INT`…:data:`MAX_INT`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{where}: numbers must be finite, got {value!r}")
        return
    if MIN_INT <= value <= MAX_INT:
        return
    hint = ""
    try:
        hint = f"; write it as a float to compare it as one ({float(value)!r})"
    except OverflowError:
        pass  # beyond any float: there is no float to suggest
    raise FilterError(
        f"{where}: integers must be between -2**63 and 2**63-1 (64 bits), "
        f"got {_show_int(value)}{hint}"
    )


def check_scalar(value: Any, where: str, what: str) -> None:
    """Refuse a pattern value that is not a JSON scalar a filter can hold."""
    if is_number(value):
        check_number(value, where)
    elif not (value is None or isinstance(value, str | bool)):
        raise FilterError(
            f"{where}: {what} strings, numbers, booleans or null, got {json_kind(value)}"
        )


class Exact:
    """Exact values, one set per JSON type so that ``true`` and ``1`` stay apart."""

    __slots__ = ("bools", "null", "numbers", "strings")

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.numbers: set[int | float] = set()
        self.bools: set[bool] = set()
        self.null = False

    def add(self, value: Any) -> None:
        """Add one value :func:`check_scalar` let through."""
        if value is None:
            self.null = True
        elif isinstance(value, bool):
            self.bools.add(value)
        elif isinstance(value, str):
            self.strings.add(value)
        else:
            self.numbers.add(value)

    def matcher(self) -> Scalar | None:
        """A matcher for any event value (``False`` for non-scalars); ``None`` if empty."""
        strings, numbers = frozenset(self.strings), frozenset(self.numbers)
        bools, null = frozenset(self.bools), self.null
        if not (strings or numbers or bools or null):
            return None
        if not (numbers or bools or null):  # the common case: strings only
            return lambda v: type(v) is str and v in strings

        def exact(v: Any) -> bool:
            kind = type(v)
            if kind is str:
                return v in strings
            if kind is bool:
                return v in bools
            if kind is int or kind is float:
                return v in numbers
            return v is None and null

        return exact
