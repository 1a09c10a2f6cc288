"""The value lists of a subscription filter: ``["a", {"prefix": "b"}, …]`` (pure).

A list is compiled once into one closure (a :data:`ValueMatcher`) that answers whether
the event value at its key matches any of its entries; the closures are specialised (a
list of strings is one set lookup) because they run for every event of a filtered
subscription. :mod:`eventgateway.routing.filters` walks the pattern's objects and hands
each list to :func:`compile_leaf`; every entry point here raises :class:`FilterError`
with a message naming the field path (``filter.data.plan: …``).

Values are compared by JSON type: ``5`` never matches ``"5"``, ``true`` never matches
``1`` (Python's ``True == 1`` is why exact values are kept in one set per type). Numbers
compare numerically (``5`` matches ``5.0``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from eventgateway.routing.filter_budget import charge
from eventgateway.routing.filter_values import (
    MISSING,
    Exact,
    FilterError,
    Scalar,
    check_number,
    check_scalar,
    is_number,
    json_kind,
)

__all__ = [
    "OPERATORS",
    "ValueMatcher",
    "compile_leaf",
    "wildcard_match",
]

OPERATORS: Final = (
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "equals-ignore-case",
    "wildcard",
)
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_NUMERIC_HINT: Final = '"numeric" needs operator/number pairs, e.g. [">", 0, "<=", 5]'
_STRING_OPERATORS: Final = ("prefix", "suffix", "equals-ignore-case", "wildcard")


_SCALAR_TYPES: Final = frozenset((str, int, float, bool, type(None)))

ValueMatcher = Callable[[Any], bool]
"""A compiled value list: whether the event value at a key (or :data:`MISSING`) matches."""


def _present(value: Any) -> bool:
    return value is not MISSING


def _in_list(scalar: Scalar, items: list[Any], weight: int) -> bool:
    charge(len(items) * weight)  # before the loop: an overrun costs nothing (filter_budget)
    for item in items:
        if type(item) is list:
            if _in_list(scalar, item, weight):
                return True
        elif scalar(item):
            return True
    return False


def _leaf(exact: Exact, ops: list[Scalar], exists: set[bool]) -> ValueMatcher:
    """The value list as one closure: matches when any entry matches (OR).

    An event array matches when any element does. ``{"exists": true}`` matches any value
    that is present (``null``, objects and arrays included); ``{"exists": false}`` matches
    only a missing field. Every other entry matches scalars only, and each checks the type
    of the value itself, so no entry ever sees a value it cannot compare.
    """
    if True in exists:
        # Present is enough, whatever else the list allows; with exists: false too, so is
        # missing.
        return _always if False in exists else _present
    if_missing = False in exists
    found = exact.matcher()
    checks = ([found] if found is not None else []) + ops
    weight = max(1, len(checks))
    scalar: Scalar
    if not checks:
        scalar = _never
    elif len(checks) == 1:
        scalar = checks[0]
    else:
        every = tuple(checks)

        def scalar(v: Any) -> bool:
            # A loop, not any(): a generator costs a frame per event on the hot path.
            for check in every:  # noqa: SIM110
                if check(v):
                    return True
            return False

    def match(value: Any) -> bool:
        if value is MISSING:
            return if_missing
        if type(value) is list:
            return _in_list(scalar, value, weight)
        return scalar(value)

    return match


def _never(value: Any) -> bool:
    return False


def _always(value: Any) -> bool:
    return True


def wildcard_match(parts: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` matches a wildcard split at its ``*``: ``("a", "b")`` is ``a*b``.

    No backtracking: the first part must start the text, the last must end it, and the
    middle ones are found left to right, each at its first place after the one before
    (the leftmost place is always a right choice for ``*``-only patterns). The work is at
    most the length of the text times the number of parts.
    """
    first, last = parts[0], parts[-1]
    if len(parts) == 1:
        return text == first
    if len(text) < len(first) + len(last) or not text.startswith(first):
        return False
    end = len(text) - len(last)
    if not text.endswith(last):
        return False
    at = len(first)
    for part in parts[1:-1]:
        found = text.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


def _wildcard_parts(pattern: str, where: str) -> tuple[str, ...]:
    parts: list[str] = []
    current: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "*":
            parts.append("".join(current))
            current = []
        elif char == "\\":
            escaped = next(chars, "")
            if escaped not in ("*", "\\"):
                raise FilterError(
                    f'{where}: "wildcard" escapes only * and \\ (write \\* for a literal * '
                    "and \\\\ for a backslash)"
                )
            current.append(escaped)
        else:
            current.append(char)
    parts.append("".join(current))
    return tuple(parts)


def _string(name: str, value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FilterError(f'{where}: "{name}" takes a string, got {json_kind(value)}')
    return value


def _string_op(name: str, value: Any, where: str) -> Scalar:
    text = _string(name, value, where)
    if name == "prefix":
        return lambda v: type(v) is str and v.startswith(text)
    if name == "suffix":
        return lambda v: type(v) is str and v.endswith(text)
    if name == "equals-ignore-case":
        folded = text.casefold()
        return lambda v: type(v) is str and v.casefold() == folded
    parts = _wildcard_parts(text, where)
    return lambda v: type(v) is str and wildcard_match(parts, v)


def _numeric(value: Any, where: str) -> Scalar:
    if not isinstance(value, list) or len(value) not in (2, 4):
        raise FilterError(f"{where}: {_NUMERIC_HINT}")
    checks: list[tuple[Callable[[Any, Any], bool], int | float]] = []
    for op, bound in zip(value[::2], value[1::2], strict=True):
        if not isinstance(op, str) or op not in _COMPARISONS or not is_number(bound):
            raise FilterError(f"{where}: {_NUMERIC_HINT}")
        if isinstance(bound, float) and not math.isfinite(bound):
            raise FilterError(f'{where}: "numeric" bounds must be finite numbers')
        check_number(bound, where)
        checks.append((_COMPARISONS[op], bound))
    pairs = tuple(checks)

    def numeric(v: Any) -> bool:
        kind = type(v)
        if kind is not int and kind is not float:
            return False
        for compare, bound in pairs:  # noqa: SIM110 - per event: no generator frame
            if not compare(v, bound):
                return False
        return True

    return numeric


def _anything_but(value: Any, where: str) -> tuple[Scalar, int]:
    """The negated matcher and the number of values it holds (for the leaf limit)."""
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise FilterError(
                f'{where}: "anything-but" takes a value, a list of values or one of '
                + ", ".join(f'{{"{name}": …}}' for name in _STRING_OPERATORS)
            )
        [(name, operand)] = value.items()
        if name not in _STRING_OPERATORS:
            raise FilterError(
                f'{where}: "anything-but" cannot hold "{name}"; it takes '
                + ", ".join(f'"{n}"' for n in _STRING_OPERATORS)
            )
        inner = _string_op(name, operand, where)
        return (lambda v: type(v) in _SCALAR_TYPES and not inner(v)), 1
    values = value if isinstance(value, list) else [value]
    if not values:
        raise FilterError(f'{where}: "anything-but" needs at least one value')
    excluded = Exact()
    for item in values:
        check_scalar(item, where, '"anything-but" values must be')
        excluded.add(item)
    hit = excluded.matcher() or _never
    return (lambda v: type(v) in _SCALAR_TYPES and not hit(v)), len(values)


def _operator(entry: Mapping[Any, Any], where: str, exists: set[bool]) -> tuple[Scalar | None, int]:
    """Compile one ``{"op": operand}`` entry; ``exists`` collects the exists flags."""
    if len(entry) != 1:
        raise FilterError(
            f'{where}: an operator object has exactly one key, e.g. {{"prefix": "a"}}; '
            f"got {len(entry)}"
        )
    [(name, operand)] = entry.items()
    if name in _STRING_OPERATORS:
        return _string_op(name, operand, where), 1
    if name == "numeric":
        return _numeric(operand, where), 1
    if name == "anything-but":
        return _anything_but(operand, where)
    if name == "exists":
        if not isinstance(operand, bool):
            raise FilterError(f'{where}: "exists" takes true or false, got {json_kind(operand)}')
        exists.add(operand)
        return None, 1
    known = ", ".join(f'"{op}"' for op in OPERATORS)
    raise FilterError(f'{where}: unknown operator "{str(name)[:40]}" (known: {known})')


def compile_leaf(values: list[Any], where: str) -> tuple[ValueMatcher, int]:
    """Compile a value list; returns its matcher and how many values it holds.

    Raises:
        FilterError: an empty list, a nested array, or an invalid operator object.
    """
    if not values:
        raise FilterError(f'{where}: needs at least one value, e.g. ["a"] or [{{"prefix": "a"}}]')
    exact = Exact()
    ops: list[Scalar] = []
    exists: set[bool] = set()
    count = 0
    for entry in values:
        if isinstance(entry, Mapping):
            op, used = _operator(entry, where, exists)
            if op is not None:
                ops.append(op)
            count += used
        else:
            check_scalar(entry, where, "a value list holds operator objects,")
            exact.add(entry)
            count += 1
    return _leaf(exact, ops, exists), count
