"""The sync response object a function returns: ``{statusCode, headers, body}`` (contract §2.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["MALFORMED", "HttpResult", "parse_http_result", "sniff_content_type"]

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
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
        raise _Malformed
    return value


def _headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise _Malformed
    headers = []
    for name, item in value.items():
        if item is None:
            item = ""
        if not isinstance(item, str):
            raise _Malformed
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
    except msgspec.DecodeError:
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
    body = (body_value or "").encode()
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", sniff_content_type(body)))
    return HttpResult(status, headers, body)


# Go's sniffing treats these control bytes as binary (net/http/sniff.go, isBinary).
_BINARY_BYTES = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])

_HTML_PREFIXES = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
)


def sniff_content_type(body: bytes) -> str:
    """A Content-Type the way Go's ``http.DetectContentType`` picks the common ones."""
    head = body[:512].lstrip(b"\t\n\x0c\r ").lower()
    for prefix in _HTML_PREFIXES:
        if head.startswith(prefix) and head[len(prefix) : len(prefix) + 1] in (b" ", b">"):
            return "text/html; charset=utf-8"
    if any(byte in _BINARY_BYTES for byte in body[:512]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
