"""The sync response object a function returns: ``{statusCode, headers, body}`` (contract §2.5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from eventgateway.dispatch.sniff import sniff_content_type
from eventgateway.model.gojson import replace_lone_surrogates

__all__ = ["BODILESS_STATUSES", "MALFORMED", "HttpResult", "parse_http_result"]

MALFORMED = "HTTP response object malformed"


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What the gateway answers on a sync route."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _Malformed(Exception):
    pass


def _member(obj: dict[str, Any], name: str) -> Any:
    # Go's json.Unmarshal: an exact key wins, else a case-insensitive one; null is "absent".
    if name in obj:
        return obj[name]
    lowered = name.lower()
    found = None
    for key, value in obj.items():
        if key.lower() == lowered:
            found = value
    return found


def _status(value: Any) -> int:
    if value is None:
        return 200
    # Go accepted 100-999; a 1xx cannot be a final response and HTTP defines no class
    # above 5xx, so those are malformed here rather than written as a broken response.
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise _Malformed
    return value


# RFC 9110 §5.1 token characters; values may not hold CR, LF, NUL or other controls
# (a function could otherwise split or smuggle responses).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Framing and the Date line are the gateway's to write: a function's copy would disagree
# with the body actually sent, or duplicate the server's own header.
_GATEWAY_HEADERS = frozenset({"content-length", "transfer-encoding", "date"})
# RFC 9110 §6.4.1: no content in these responses.
BODILESS_STATUSES = frozenset({204, 304})


def _headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise _Malformed
    headers = []
    for name, item in value.items():
        if item is None:
            item = ""
        if not isinstance(item, str) or not _HEADER_NAME.fullmatch(name):
            raise _Malformed
        if _HEADER_VALUE_FORBIDDEN.search(item):
            raise _Malformed
        if name.lower() not in _GATEWAY_HEADERS:
            headers.append((name, item))
    return headers


def parse_http_result(raw: bytes) -> HttpResult | None:
    """The function's reply as an HTTP response; ``None`` when it is malformed.

    Decoded the way Go's ``json.Unmarshal`` filled the original's struct: member names
    match case-insensitively, ``null`` members keep their defaults, a missing
    ``statusCode`` is 200.
    """
    try:
        decoded = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting
        # Go reads invalid UTF-8 and lone surrogate escapes as U+FFFD instead of failing.
        fixed = replace_lone_surrogates(raw).decode("utf-8", "replace").encode()
        if fixed == raw:
            return None
        try:
            decoded = msgspec.json.decode(fixed)
        except (msgspec.DecodeError, RecursionError):
            return None
    if decoded is None:
        return HttpResult(200, [], b"")
    if not isinstance(decoded, dict):
        return None
    try:
        status = _status(_member(decoded, "statusCode"))
        headers = _headers(_member(decoded, "headers"))
    except _Malformed:
        return None
    body_value = _member(decoded, "body")
    if body_value is not None and not isinstance(body_value, str):
        return None
    body = b"" if status in BODILESS_STATUSES else (body_value or "").encode()
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", sniff_content_type(body)))
    return HttpResult(status, headers, body)
