"""Pure checks shared by every way an event arrives: media types, timestamps, URIs, names.

Apart from :func:`media_type`, nothing here raises: each check answers a value or
``None``/``False`` and the caller words the 400 message, because only the caller knows which
attribute or header was at fault.

The media-type parser follows Go's ``mime.ParseMediaType`` (the original gateway's parser),
including its error texts, since those reach clients verbatim (contract §2.2).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from eventgateway.events.headers import CACHEABLE_CHARS

__all__ = [
    "MediaTypeError",
    "go_validation_line",
    "is_attribute_name",
    "is_request_uri",
    "is_uri",
    "is_uri_reference",
    "json_kind",
    "media_type",
    "normalize_rfc3339",
    "valid_rfc3339",
]

_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')


class MediaTypeError(ValueError):
    """Raised by :func:`media_type` with Go's ``mime:`` error text."""


def _is_token_char(c: str) -> bool:
    return " " < c < "\x7f" and c not in _TSPECIALS


def _consume_token(v: str) -> tuple[str, str]:
    for i, c in enumerate(v):
        if not _is_token_char(c):
            return v[:i], v[i:]
    return v, ""


def _consume_value(v: str) -> tuple[str, str]:
    if not v:
        return "", ""
    if v[0] != '"':
        return _consume_token(v)
    out: list[str] = []
    i = 1
    while i < len(v):
        c = v[i]
        if c == '"':
            return "".join(out), v[i + 1 :]
        if c == "\\" and i + 1 < len(v) and v[i + 1] in _TSPECIALS:
            out.append(v[i + 1])
            i += 2
            continue
        if c in "\r\n":
            return "", v
        out.append(c)
        i += 1
    return "", v  # no closing quote


def _consume_param(v: str) -> tuple[str, str, str]:
    rest = v.lstrip()
    if not rest.startswith(";"):
        return "", "", v
    key, rest = _consume_token(rest[1:].lstrip())
    if not key:
        return "", "", v
    rest = rest.lstrip()
    if not rest.startswith("="):
        return "", "", v
    rest = rest[1:].lstrip()
    value, rest2 = _consume_value(rest)
    if not value and rest2 == rest:
        return "", "", v
    return key.lower(), value, rest2


def media_type(header_value: str) -> str:
    """Return the lower-cased media type of a Content-Type value, parameters dropped.

    An empty value (or one with no type token) is ``application/octet-stream``, as in the
    original gateway, which treated Go's ``mime: no media type`` as an absent header.
    Results for values of up to 256 characters are cached: clients send a handful of
    distinct Content-Type values.

    Raises:
        MediaTypeError: with Go's text, e.g. ``mime: expected token after slash``.
    """
    if len(header_value) <= CACHEABLE_CHARS:
        return _media_type_cached(header_value)
    return _media_type(header_value)


def _media_type(header_value: str) -> str:
    semi = header_value.find(";")
    head = header_value if semi < 0 else header_value[:semi]
    mtype = head.lower().strip()
    typ, rest = _consume_token(mtype)
    if not typ:
        return "application/octet-stream"
    if rest:
        if not rest.startswith("/"):
            raise MediaTypeError("mime: expected slash after first token")
        subtype, rest = _consume_token(rest[1:])
        if not subtype:
            raise MediaTypeError("mime: expected token after slash")
        if rest:
            raise MediaTypeError("mime: unexpected content after media subtype")
    if semi >= 0:
        _check_params(header_value[semi:])
    return mtype


# A key and a value per entry, of up to the header limit (64 KiB) each: only short ones.
_media_type_cached = lru_cache(maxsize=512)(_media_type)


def _check_params(v: str) -> None:
    seen: dict[str, str] = {}
    while v:
        v = v.lstrip()
        if not v:
            return
        key, value, rest = _consume_param(v)
        if not key:
            if rest.strip() == ";":
                return  # Go ignores trailing semicolons
            raise MediaTypeError("mime: invalid media parameter")
        if seen.get(key, value) != value:
            raise MediaTypeError("mime: duplicate parameter name")
        seen[key] = value
        v = rest


# RFC 3339 date-time. The 0.1 pattern is Go's time.RFC3339 layout (upper-case T and Z only);
# CloudEvents 1.0 points at RFC 3339 itself, which allows lower case.
_RFC3339_GO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)", re.ASCII)
_RFC3339_ANY = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)", re.ASCII
)


def _rfc3339_ok(value: str, pattern: re.Pattern[str]) -> bool:
    if pattern.fullmatch(value) is None:
        return False
    if value[-1] not in "Zz" and value[-2:] > "59":
        return False  # fromisoformat would carry offset minutes over into hours
    if value.startswith("0000"):
        value = "2000" + value[4:]  # year 0 is valid here; 2000 has the same leap rule
    try:
        # The pattern fixed the shape; the C parser checks the ranges (month, day, hour…).
        datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


def valid_rfc3339(value: str) -> bool:
    """Tell whether ``value`` is an RFC 3339 timestamp (CloudEvents 1.0 ``time``)."""
    return _rfc3339_ok(value, _RFC3339_ANY)


def normalize_rfc3339(value: str) -> str | None:
    """Parse a 0.1 ``eventTime`` like Go's ``time.Parse(time.RFC3339)`` and re-format it.

    Returns Go's ``RFC3339Nano`` rendering (what the original delivered: fraction cut to
    nanoseconds with trailing zeros dropped, ``Z`` for a zero offset), or ``None`` if the
    value is not a valid timestamp.
    """
    if not _rfc3339_ok(value, _RFC3339_GO):
        return None
    head, dot, rest = value[:19], value[19:20], value[19:]
    if value[-1] == "Z":
        zone = "Z"
        frac = rest[1:-1] if dot == "." else ""
    else:
        zone = value[-6:]
        frac = rest[1:-6] if dot == "." else ""
        if zone in ("+00:00", "-00:00"):
            zone = "Z"
    frac = frac[:9].rstrip("0")
    return head + ("." + frac if frac else "") + zone


def is_request_uri(value: str) -> bool:
    """Tell whether Go's ``url.ParseRequestURI`` accepts ``value`` (0.1 ``source``).

    That is an absolute URI (``https://x/y``, ``urn:x``) or an absolute path (``/a/b``).
    """
    if not value or _CTL.search(value):
        return False
    if value == "*":
        return True
    scheme, rest = _split_scheme(value)
    if scheme is None:
        return False
    rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        return bool(scheme)  # "scheme:opaque" is fine, a bare relative path is not
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if not _valid_authority(authority):
            return False
        rest = slash + path
    return _valid_escapes(rest)


_CTL = re.compile(r"[\x00-\x1f\x7f]")
_HEX = frozenset("0123456789abcdefABCDEF")
_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@")
_HOST_OK = frozenset("-._~!$&'()*+,;=:[]<>\"%")


def _split_scheme(value: str) -> tuple[str | None, str]:
    """Go's getscheme: ``(scheme, rest)``; ``("", value)`` without one; ``None`` if invalid."""
    for i, c in enumerate(value):
        if "a" <= c <= "z" or "A" <= c <= "Z":
            continue
        if "0" <= c <= "9" or c in "+-.":
            if i == 0:
                return "", value
            continue
        if c == ":":
            if i == 0:
                return None, value  # Go: "missing protocol scheme"
            return value[:i], value[i + 1 :]
        return "", value
    return "", value


def _valid_escapes(s: str) -> bool:
    i = s.find("%")
    while i >= 0:
        if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
            return False
        i = s.find("%", i + 3)
    return True


def _valid_port(colon_port: str) -> bool:
    return not colon_port or (colon_port[0] == ":" and all("0" <= c <= "9" for c in colon_port[1:]))


def _valid_authority(authority: str) -> bool:
    at = authority.rfind("@")
    if at >= 0 and not all(
        (c.isascii() and c.isalnum()) or c in _USERINFO_OK for c in authority[:at]
    ):
        return False
    host = authority[at + 1 :]
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0 or not _valid_port(host[end + 1 :]):
            return False
    else:
        colon = host.rfind(":")
        if colon >= 0 and not _valid_port(host[colon:]):
            return False
    if any(c.isascii() and not c.isalnum() and c not in _HOST_OK for c in host):
        return False
    return _valid_escapes(host)


# RFC 3986 URI-reference: only these characters, percent signs followed by two hex digits,
# and a ':' before the first '/', '?' or '#' must end a valid scheme.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_FIRST_DELIM = re.compile(r"[:/?#]")


def is_uri_reference(value: str) -> bool:
    """Tell whether ``value`` is a non-empty RFC 3986 URI-reference (CloudEvents 1.0 ``source``)."""
    return _uri_scheme(value) is not None


def is_uri(value: str) -> bool:
    """Tell whether ``value`` is an absolute RFC 3986 URI (CloudEvents 1.0 ``dataschema``)."""
    return bool(_uri_scheme(value))


def _uri_scheme(value: str) -> str | None:
    """Return the scheme ("" for a relative reference), or ``None`` if not a URI-reference."""
    if len(value) <= CACHEABLE_CHARS:
        return _uri_scheme_cached(value)
    return _parse_uri_scheme(value)


def _parse_uri_scheme(value: str) -> str | None:
    if not value or _URI_CHARS.fullmatch(value) is None or _BAD_ESCAPE.search(value):
        return None
    m = _FIRST_DELIM.search(value)
    if m is None or m.group() != ":":
        scheme, rest = "", value
    else:
        scheme, rest = value[: m.start()], value[m.end() :]
        if not _SCHEME.fullmatch(scheme):
            return None
    if rest.startswith("//"):  # an authority: its host and port must parse too
        authority = _AUTHORITY_END.split(rest[2:], maxsplit=1)[0]
        if not _valid_authority(authority):
            return None
    return scheme


_AUTHORITY_END = re.compile(r"[/?#]")
# Sources repeat (a producer sends one or a few): after the first, a check is a lookup.
_uri_scheme_cached = lru_cache(maxsize=1024)(_parse_uri_scheme)


_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")


def is_attribute_name(name: str) -> bool:
    """Tell whether ``name`` is a valid CloudEvents 1.0 attribute name (a–z, 0–9).

    The spec's 20-character limit is a SHOULD, so longer names are accepted.
    """
    return _ATTRIBUTE_NAME.fullmatch(name) is not None


def go_validation_line(field: str, tag: str) -> str:
    """One line of go-playground/validator's error text for the 0.1 ``Event`` struct."""
    return f"Key: 'Event.{field}' Error:Field validation for '{field}' failed on the '{tag}' tag"


_KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number"}


def json_kind(value: Any) -> str:
    """Name a decoded JSON value's type the way JSON does (``object``, ``number``…)."""
    if value is None:
        return "null"
    return _KINDS.get(type(value), "number")
