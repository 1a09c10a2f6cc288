"""The sync response object a function returns: ``{statusCode, headers, body}`` (contract §2.5)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

__all__ = ["MALFORMED", "HttpResult", "parse_http_result", "sniff_content_type"]

MALFORMED = "HTTP response object malformed"


class _Result(msgspec.Struct):
    statusCode: int = 200
    headers: dict[str, str] = {}
    body: str = ""


_decoder = msgspec.json.Decoder(_Result | None)


@dataclass(frozen=True, slots=True)
class HttpResult:
    """What the gateway answers on a sync route."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_http_result(raw: bytes) -> HttpResult | None:
    """The function's reply as an HTTP response; ``None`` when it is malformed."""
    try:
        result = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if result is None:
        return HttpResult(200, [], b"")
    if not 100 <= result.statusCode <= 999:
        return None
    body = result.body.encode()
    headers = list(result.headers.items())
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", sniff_content_type(body)))
    return HttpResult(result.statusCode, headers, body)


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
        if head.startswith(prefix):
            rest = head[len(prefix) : len(prefix) + 1]
            if prefix == b"<!--" or rest in (b" ", b">"):
                return "text/html; charset=utf-8"
    if any(byte < 0x09 or (0x0E <= byte < 0x20 and byte != 0x1B) for byte in body[:512]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
