"""Where in a request body the number Go's decoder refused is (pure).

:func:`eventgateway.model.gojson.decode_value` refuses ``NaN``, ``Infinity`` and numbers
beyond float64 with Go's message, which names no field: right for the original's fields,
whose clients expect Go's words, but a field eventgateway added (a subscription's
``filter``) should name its path. The decoder cannot say where it was, so the body is read
once more, here, with those numbers allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator
from typing import Any, Final

from eventgateway.model.gojson import GoNumberError, StructSpec, replace_lone_surrogates

__all__ = ["refused_number_message", "refused_number_path"]

_GO_WHITESPACE: Final = " \t\r\n"
# What decode_value refuses becomes _REFUSED and every other number 0 (the values do not
# matter here); objects stay member lists, so a walk in document order finds the first.
_REFUSED: Final = object()


class _Members(list[tuple[str, Any]]):
    __slots__ = ()


def _refused_float(text: str) -> Any:
    return _REFUSED if math.isinf(float(text)) else 0


_locator: Final = json.JSONDecoder(
    object_pairs_hook=_Members,
    parse_constant=lambda _name: _REFUSED,
    parse_float=_refused_float,
    parse_int=lambda text: 0 if len(text) <= 300 else _refused_float(text),
)


def refused_number_path(raw: bytes) -> tuple[str | int, ...] | None:
    """Where the number that made ``decode_value(raw)`` raise a ``GoNumberError`` is.

    Returns:
        The member names and array indexes from the top down to the first refused number
        in document order (the one Go's message is about), or ``None`` when the value does
        not parse even with such numbers allowed (a syntax error further on).
    """
    text = replace_lone_surrogates(raw).decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(_GO_WHITESPACE))
    try:
        value, _end = _locator.raw_decode(text, start)
        return _first_refused(value, ())
    except (json.JSONDecodeError, RecursionError):
        return None


def _first_refused(value: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    if value is _REFUSED:
        return path
    members: Iterator[tuple[str | int, Any]]
    if isinstance(value, _Members):
        members = iter(value)
    elif isinstance(value, list):
        members = enumerate(value)
    else:
        return None
    for key, member in members:
        found = _first_refused(member, (*path, key))
        if found is not None:
            return found
    return None


def refused_number_message(
    exc: GoNumberError, raw: bytes, struct: StructSpec, own: Collection[str]
) -> str:
    """The message for ``exc``, raised decoding ``raw`` into ``struct``.

    Go's own message, unless the refused number is inside one of the fields ``own`` names
    (JSON names, matched as the decoder matches keys): then ``<path>: <what is wrong>``,
    e.g. ``filter.data.n[0]: NaN is not a JSON number; numbers must be finite``.
    """
    path = refused_number_path(raw)
    if not path or not isinstance(path[0], str):
        return str(exc)
    field = struct.lookup(path[0])
    if field is None or field.json_name not in own:
        return str(exc)
    return f"{field.json_name}{''.join(_step(step) for step in path[1:])}: {exc.detail}"


def _step(step: str | int) -> str:
    if isinstance(step, int):
        return f"[{step}]"
    return f".{step}" if step else '[""]'  # as filter messages show an empty key
