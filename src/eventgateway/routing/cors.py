"""CORS decisions on the Events API, as the original's ``rs/cors`` 1.2 made them (contract §2.7).

Pure functions from a :class:`~eventgateway.model.entities.Cors` configuration and the
request headers to the response headers to add. ``headers`` arguments are mappings with
lower-case header names. A matching configuration is found with
:meth:`eventgateway.routing.table.RoutingTable.cors`; without one, CORS is off and a
preflight is an ordinary ``OPTIONS`` request.

Quirks kept from rs/cors 1.2:

* an empty ``allowedOrigins`` list allows every origin, and so does ``*`` anywhere in it;
* an empty ``allowedMethods`` list means ``GET``, ``POST``, ``HEAD``; ``OPTIONS`` is
  always allowed;
* an empty ``allowedHeaders`` list means ``Origin``, ``Accept``, ``Content-Type``,
  ``X-Requested-With``; otherwise ``Origin`` is always allowed and ``*`` allows all;
* a non-preflight ``OPTIONS`` request gets no CORS headers at all, not even ``Vary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from eventgateway.model.entities import Cors

__all__ = [
    "actual_headers",
    "canonical_header_key",
    "is_preflight",
    "origin_allowed",
    "parse_header_list",
    "preflight_headers",
]

_DEFAULT_METHODS: Final = ("GET", "POST", "HEAD")
_DEFAULT_HEADERS: Final = ("Origin", "Accept", "Content-Type", "X-Requested-With")
_PREFLIGHT_VARY: Final = (
    ("Vary", "Origin"),
    ("Vary", "Access-Control-Request-Method"),
    ("Vary", "Access-Control-Request-Headers"),
)
# RFC 7230 tchar, the bytes Go's CanonicalHeaderKey accepts
_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is a CORS preflight: ``OPTIONS`` + ``Access-Control-Request-Method``."""
    return method == "OPTIONS" and bool(headers.get("access-control-request-method"))


def preflight_headers(cors: Cors, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The response headers for a preflight request (answered 200, empty body).

    Always the three ``Vary`` headers. When the ``Origin`` is present and allowed, the
    requested method is allowed and every requested header is allowed, also
    ``Access-Control-Allow-Origin``, ``-Allow-Methods`` (the requested method, upper
    case), ``-Allow-Headers`` (the requested headers, canonicalised, when any) and
    ``-Allow-Credentials`` (when enabled).

    Args:
        cors: the configuration matching (requested method, path).
        headers: the request headers, lower-case names.
    """
    out = list(_PREFLIGHT_VARY)
    origin = headers.get("origin", "")
    if not origin or not origin_allowed(cors, origin):
        return out
    requested_method = headers.get("access-control-request-method", "")
    if not _method_allowed(cors, requested_method):
        return out
    requested_headers = parse_header_list(headers.get("access-control-request-headers", ""))
    if not _headers_allowed(cors, requested_headers):
        return out
    out.append(("Access-Control-Allow-Origin", _allow_origin_value(cors, origin)))
    out.append(("Access-Control-Allow-Methods", requested_method.upper()))
    if requested_headers:
        out.append(("Access-Control-Allow-Headers", ", ".join(requested_headers)))
    if cors.allow_credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    return out


def actual_headers(cors: Cors, method: str, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers to add to the response of a non-preflight request.

    ``Vary: Origin``, plus ``Access-Control-Allow-Origin`` (and ``-Allow-Credentials``
    when enabled) if the ``Origin`` is present and allowed and ``method`` is allowed.
    An ``OPTIONS`` request gets nothing (rs/cors 1.2 behaviour).

    Args:
        cors: the configuration matching (method, path).
        method: the request method.
        headers: the request headers, lower-case names.
    """
    if method == "OPTIONS":
        return []
    out = [("Vary", "Origin")]
    origin = headers.get("origin", "")
    if not origin or not origin_allowed(cors, origin) or not _method_allowed(cors, method):
        return out
    out.append(("Access-Control-Allow-Origin", _allow_origin_value(cors, origin)))
    if cors.allow_credentials:
        out.append(("Access-Control-Allow-Credentials", "true"))
    return out


def origin_allowed(cors: Cors, origin: str) -> bool:
    """Whether ``origin`` matches the configuration's allowed origins.

    Matching is case-insensitive; a pattern may hold one ``*`` that stands for any text
    (``http://*.example.com``); ``*`` alone, or an empty list, allows every origin.
    """
    if _all_origins(cors):
        return True
    origin = origin.lower()
    for pattern in cors.allowed_origins:
        pattern = pattern.lower()
        star = pattern.find("*")
        if star < 0:
            if pattern == origin:
                return True
            continue
        prefix, suffix = pattern[:star], pattern[star + 1 :]
        if (
            len(origin) >= len(prefix) + len(suffix)
            and origin.startswith(prefix)
            and origin.endswith(suffix)
        ):
            return True
    return False


def parse_header_list(value: str) -> list[str]:
    """Split an ``Access-Control-Request-Headers`` value into canonical header names.

    rs/cors' tokenizer: names end at a space or comma; letters are upper-cased at the
    start and after ``-`` and lower-cased elsewhere; ``-``, ``_`` and digits are kept; any
    other character is dropped.
    """
    names: list[str] = []
    current: list[str] = []
    upper = True
    last = len(value) - 1
    for index, char in enumerate(value):
        if "a" <= char <= "z" or "A" <= char <= "Z":
            current.append(char.upper() if upper else char.lower())
        elif char in "-_" or "0" <= char <= "9":
            current.append(char)
        if char in " ," or index == last:
            if current:
                names.append("".join(current))
                current.clear()
                upper = True
        else:
            upper = char == "-"
    return names


def canonical_header_key(name: str) -> str:
    """Go's ``http.CanonicalHeaderKey``: ``content-type`` → ``Content-Type``.

    A name with a character outside the HTTP token set is returned unchanged.
    """
    if not all(char in _TOKEN_CHARS for char in name):
        return name
    out = []
    upper = True
    for char in name:
        out.append(char.upper() if upper else char.lower())
        upper = char == "-"
    return "".join(out)


def _all_origins(cors: Cors) -> bool:
    return not cors.allowed_origins or "*" in cors.allowed_origins


def _allow_origin_value(cors: Cors, origin: str) -> str:
    # a literal "*" is only valid without credentials; with them the origin is echoed
    return "*" if _all_origins(cors) and not cors.allow_credentials else origin


def _method_allowed(cors: Cors, method: str) -> bool:
    method = method.upper()
    if method == "OPTIONS":
        return True
    if not cors.allowed_methods:
        return method in _DEFAULT_METHODS
    return any(allowed.upper() == method for allowed in cors.allowed_methods)


def _headers_allowed(cors: Cors, requested: list[str]) -> bool:
    if not requested:
        return True
    configured = cors.allowed_headers
    if "*" in configured:
        return True
    if configured:
        allowed = {canonical_header_key(name) for name in configured}
        allowed.add("Origin")
    else:
        allowed = set(_DEFAULT_HEADERS)
    return all(canonical_header_key(name) in allowed for name in requested)
