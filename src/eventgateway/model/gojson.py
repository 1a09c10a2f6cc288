"""Request bodies decoded the way Go's ``encoding/json`` decoded them in the original.

Clients were written against Go's decoder, which differs from a strict JSON parser:

* only the first JSON value of the body is read; trailing bytes are ignored;
* an empty body fails with ``EOF``, a truncated one with ``unexpected EOF``;
* ``null`` decodes into a struct as "nothing set";
* object keys match struct fields case-insensitively, unknown keys are dropped, and a
  later key overrides an earlier one;
* a value of the wrong JSON type is an error naming the Go field and type.

The messages reproduce Go's texts closely enough for people and for the substring checks
clients do; they are not promised to be byte-identical for every syntax error.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "FieldSpec",
    "GoJSONError",
    "GoNumberError",
    "StructSpec",
    "as_bool",
    "as_raw",
    "as_string",
    "as_string_list",
    "as_string_map",
    "decode_struct",
    "decode_value",
    "go_kind",
    "plain_syntax_message",
    "replace_lone_surrogates",
]

_GO_WHITESPACE: Final = " \t\r\n"
# Any \uD800–\uDFFF escape: the cheap test that keeps ordinary bodies off the rewrite.
_SURROGATE_HINT: Final = re.compile(rb"\\u[dD][89a-fA-F]")
# One escape at a time, so "\\" (an escaped backslash) is never read as starting "\u…";
# a valid high+low pair is matched whole, before a lone surrogate can match.
_ESCAPE: Final = re.compile(
    rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a pair
    rb"|u[dD][89a-fA-F][0-9a-fA-F]{2}"  # a lone surrogate
    rb"|.)",  # any other escape
    re.DOTALL,
)


class GoJSONError(Exception):
    """Raised when a body does not decode; ``str(exc)`` is Go's error text."""


class _Object(dict[str, Any]):
    """A JSON object that also remembers its members in document order, duplicates kept."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


class GoNumberError(GoJSONError):
    """A number Go's decoder refused: ``NaN``/``Infinity`` (not JSON) or beyond float64.

    Attributes:
        detail: what is wrong, worded for a field eventgateway checks itself (the
            caller puts the field's path in front;
            :func:`eventgateway.model.gojson_numbers.refused_number_path` finds it).
    """

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def _reject_constant(name: str) -> Any:
    # Python accepts NaN/Infinity; Go does not.
    first = name.lstrip("-")[0]
    raise GoNumberError(
        f"invalid character {_quote_char(first)} looking for beginning of value",
        f"{name} is not a JSON number; numbers must be finite",
    )


def _float(text: str) -> float:
    # Go decodes a JSON number into a float64 and refuses one out of its range; Python
    # would give inf, or (for an integer of over 4,300 digits) raise a plain ValueError.
    value = float(text)
    if math.isinf(value):
        number = text[:32]
        raise GoNumberError(
            f"json: cannot unmarshal number {number} into Go value of type float64",
            f"number {number} is out of range; numbers must fit a 64-bit float "
            "(up to about 1.8e308)",
        )
    return value


def _int(text: str) -> int | float:
    return int(text) if len(text) <= 300 else _float(text)


_decoder: Final = json.JSONDecoder(
    object_pairs_hook=_Object,
    parse_constant=_reject_constant,
    parse_float=_float,
    parse_int=_int,
)


def _quote_char(c: str) -> str:
    """Go's ``quoteChar``: how its decoder names an offending character."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    escapes = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
    if c in escapes:
        return f"'{escapes[c]}'"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"'\\x{ord(c):02x}'"
    return f"'{c}'"


def _innermost_container(doc: str, end: int) -> str:
    """``{`` or ``[``: the container still open at ``end`` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in doc[:end]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _syntax_message(exc: json.JSONDecodeError) -> str:
    doc, pos, msg = exc.doc, exc.pos, exc.msg
    if pos >= len(doc) or msg.startswith("Unterminated string"):
        return "unexpected EOF"
    c = _quote_char(doc[pos])
    if msg.startswith("Expecting property name"):
        return f"invalid character {c} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {c} after object key"
    if msg.startswith("Expecting ','"):
        if _innermost_container(doc, pos) == "{":
            return f"invalid character {c} after object key:value pair"
        return f"invalid character {c} after array element"
    if msg.startswith("Illegal trailing comma before end of object"):
        return f"invalid character {c} looking for beginning of object key string"
    if msg.startswith("Invalid control character"):
        return f"invalid character {c} in string literal"
    if msg.startswith("Invalid \\uXXXX"):
        # pos is the backslash; Go names the first character that is not a hex digit.
        i = pos + 2
        while i < min(pos + 6, len(doc)) and doc[i] in string.hexdigits:
            i += 1
        if i >= len(doc):
            return "unexpected EOF"
        return f"invalid character {_quote_char(doc[i])} in \\u hexadecimal character escape"
    if msg.startswith("Invalid \\escape"):
        if pos + 1 >= len(doc):
            return "unexpected EOF"
        return f"invalid character {_quote_char(doc[pos + 1])} in string escape code"
    return f"invalid character {c} looking for beginning of value"


def _lone_to_replacement(match: re.Match[bytes]) -> bytes:
    escape = match.group()
    return b"\\ufffd" if len(escape) == 6 and escape[1:2] == b"u" else escape


def replace_lone_surrogates(raw: bytes) -> bytes:
    """``raw`` with every lone UTF-16 surrogate escape (``\\ud800``) turned into ``\\ufffd``.

    Go's decoder reads a surrogate escape that is not half of a valid pair as U+FFFD;
    Python's and msgspec's would keep it (a ``str`` that cannot be encoded) or fail. Pairs
    and every other escape are left alone. Bodies without a surrogate escape are returned
    as they are, without a rewrite.
    """
    if _SURROGATE_HINT.search(raw) is None:
        return raw
    return _ESCAPE.sub(_lone_to_replacement, raw)


def plain_syntax_message(message: str) -> str:
    """msgspec's JSON syntax error worded for whoever sent the text: "Input data was
    truncated" says little, and "JSON is malformed: " repeats what the caller says."""
    if message == "Input data was truncated":
        return "it ends before the JSON value is complete"
    return message.removeprefix("JSON is malformed: ")


def decode_value(raw: bytes) -> Any:
    """The first JSON value of ``raw``, as Go's ``json.Decoder.Decode`` reads it.

    Objects come back as dicts that keep their members' order (duplicates included) for
    :func:`decode_struct`.

    Raises:
        GoJSONError: with Go's message (``EOF``, ``unexpected EOF``, ``invalid character…``).
    """
    # Go replaces invalid UTF-8, and lone surrogate escapes, with U+FFFD instead of failing.
    text = replace_lone_surrogates(raw).decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(_GO_WHITESPACE))
    if start == len(text):
        raise GoJSONError("EOF")
    try:
        value, _end = _decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise GoJSONError(_syntax_message(exc)) from exc
    except RecursionError as exc:
        raise GoJSONError("exceeded max depth") from exc
    return value


def go_kind(value: Any) -> str:
    """The word Go's decoder uses for the JSON type of ``value``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


# A converter turns a decoded JSON value into the field's Python value and ``None``, or
# returns the offending JSON value (the whole value, or one element) and the Go type name
# it should have had.
Converter = Callable[[Any], tuple[Any, str | None]]


def as_string(go_type: str = "string") -> Converter:
    """A converter for a Go string field of type ``go_type``."""

    def convert(value: Any) -> tuple[Any, str | None]:
        return (value, None) if isinstance(value, str) else (value, go_type)

    return convert


def as_bool(value: Any) -> tuple[Any, str | None]:
    """Converter for a Go ``bool`` field."""
    return (value, None) if isinstance(value, bool) else (value, "bool")


def as_string_list(value: Any) -> tuple[Any, str | None]:
    """Converter for a Go ``[]string`` field."""
    if not isinstance(value, list):
        return value, "[]string"
    for item in value:
        if not (isinstance(item, str) or item is None):
            return item, "string"
    return ["" if v is None else v for v in value], None


def as_string_map(value: Any) -> tuple[Any, str | None]:
    """Converter for a Go ``map[string]string`` field (``metadata``)."""
    if not isinstance(value, dict):
        return value, "map[string]string"
    for item in value.values():
        if not (isinstance(item, str) or item is None):
            return item, "string"
    return {k: "" if v is None else v for k, v in value.items()}, None


def as_raw(value: Any) -> tuple[Any, str | None]:
    """Converter for a ``json.RawMessage`` field: any JSON value, kept as decoded."""
    return value, None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a Go struct: its JSON name and how to convert it."""

    json_name: str
    convert: Converter
    # Go sets pointers, maps and slices to nil on JSON null; other types keep their value.
    null_clears: bool = False


@dataclass(frozen=True, slots=True)
class StructSpec:
    """A Go struct: its qualified type name (``event.Type``), short name and fields."""

    go_type: str
    name: str
    fields: tuple[FieldSpec, ...]

    def lookup(self, key: str) -> FieldSpec | None:
        """The field a JSON key lands in: exact name first, then case-insensitively."""
        for spec in self.fields:
            if spec.json_name == key:
                return spec
        folded = key.casefold()
        for spec in self.fields:
            if spec.json_name.casefold() == folded:
                return spec
        return None


def _members(obj: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    pairs = getattr(obj, "pairs", None)
    return iter(pairs) if pairs is not None else iter(obj.items())


def decode_struct(value: Any, spec: StructSpec) -> dict[str, Any]:
    """Assign a decoded JSON value to the fields of ``spec``, as Go's decoder would.

    Args:
        value: what :func:`decode_value` returned (or any mapping).
        spec: the target struct.

    Returns:
        ``{json_name: value}`` for every field that was set to a non-null value.

    Raises:
        GoJSONError: the first type mismatch, in document order (Go reports the first).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GoJSONError(
            f"json: cannot unmarshal {go_kind(value)} into Go value of type {spec.go_type}"
        )
    out: dict[str, Any] = {}
    first_error: str | None = None
    for key, member in _members(value):
        field = spec.lookup(key)
        if field is None:
            continue
        if member is None:
            if field.null_clears:
                out.pop(field.json_name, None)
            continue
        converted, bad_type = field.convert(member)
        if bad_type is not None:
            if first_error is None:
                first_error = (
                    f"json: cannot unmarshal {go_kind(converted)} into Go struct field "
                    f"{spec.name}.{field.json_name} of type {bad_type}"
                )
            continue
        out[field.json_name] = converted
    if first_error is not None:
        raise GoJSONError(first_error)
    return out
