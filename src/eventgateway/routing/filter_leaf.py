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

__all__ = [
    "MISSING",
    "OPERATORS",
    "FilterError",
    "ValueMatcher",
    "compile_leaf",
    "json_kind",
    "wildcard_match",
]


class _Missing:
    """The value of a field the event does not have (``null`` is a value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

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

Scalar = Callable[[Any], bool]
"""A compiled operator: whether one scalar event value (string, number, bool, null) matches."""


class FilterError(ValueError):
    """Raised when a filter pattern is invalid; the message names the field path."""


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)


def _scalar_value(value: Any, where: str, what: str) -> None:
    """Refuse a pattern value that is not a finite JSON scalar."""
    if not _is_scalar(value):
        raise FilterError(
            f"{where}: {what} strings, numbers, booleans or null, got {json_kind(value)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{where}: numbers must be finite, got {value!r}")


class _Exact:
    """Exact values, one set per JSON type so that ``true`` and ``1`` stay apart."""

    __slots__ = ("bools", "null", "numbers", "strings")

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.numbers: set[int | float] = set()
        self.bools: set[bool] = set()
        self.null = False

    def add(self, value: Any) -> None:
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


_SCALAR_TYPES: Final = frozenset((str, int, float, bool, type(None)))

ValueMatcher = Callable[[Any], bool]
"""A compiled value list: whether the event value at a key (or :data:`MISSING`) matches."""


def _present(value: Any) -> bool:
    return value is not MISSING


def _in_list(scalar: Scalar, items: list[Any]) -> bool:
    for item in items:
        if type(item) is list:
            if _in_list(scalar, item):
                return True
        elif scalar(item):
            return True
    return False


def _leaf(exact: _Exact, ops: list[Scalar], exists: set[bool]) -> ValueMatcher:
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
            return _in_list(scalar, value)
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
        if not isinstance(op, str) or op not in _COMPARISONS or not _is_number(bound):
            raise FilterError(f"{where}: {_NUMERIC_HINT}")
        if isinstance(bound, float) and not math.isfinite(bound):
            raise FilterError(f'{where}: "numeric" bounds must be finite numbers')
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
    excluded = _Exact()
    for item in values:
        _scalar_value(item, where, '"anything-but" values must be')
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
    exact = _Exact()
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
            _scalar_value(entry, where, "a value list holds operator objects,")
            exact.add(entry)
            count += 1
    return _leaf(exact, ops, exists), count
