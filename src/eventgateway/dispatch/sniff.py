"""The Content-Type of a sync reply's body that names none, as Go's server picked it.

The original wrote the function's body with ``http.ResponseWriter``, which sets
``http.DetectContentType`` of the first 512 bytes: the WHATWG MIME-sniffing signatures
below, in Go's order, then ``text/plain`` unless a binary control byte shows up, then
``application/octet-stream``. Each pattern here is checked against the bytes under its
mask; HTML tags match case-insensitively and must end in a space or ``>``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["sniff_content_type"]

_SNIFF_BYTES: Final = 512
_WHITESPACE: Final = b"\t\n\x0c\r "
_TEXT: Final = "text/plain; charset=utf-8"

_HTML_TAGS: Final = (
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

_ANY4: Final = b"\x00\x00\x00\x00"
_ALL4: Final = b"\xff\xff\xff\xff"

# (pattern, mask or None for all bits, skip leading whitespace, Content-Type), in Go's order
# after the HTML tags; the mp4 box check sits between the audio and WebM entries.
_SIGNATURES: Final[tuple[tuple[bytes, bytes | None, bool, str], ...]] = (
    (b"<?xml", None, True, "text/xml; charset=utf-8"),
    (b"%PDF-", None, False, "application/pdf"),
    (b"%!PS-Adobe-", None, False, "application/postscript"),
    (b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16be"),
    (b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", False, "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", False, _TEXT),
    (b"\x00\x00\x01\x00", None, False, "image/x-icon"),
    (b"\x00\x00\x02\x00", None, False, "image/x-icon"),
    (b"BM", None, False, "image/bmp"),
    (b"GIF87a", None, False, "image/gif"),
    (b"GIF89a", None, False, "image/gif"),
    (b"RIFF" + _ANY4 + b"WEBPVP", _ALL4 + _ANY4 + b"\xff" * 6, False, "image/webp"),
    (b"\x89PNG\r\n\x1a\n", None, False, "image/png"),
    (b"\xff\xd8\xff", None, False, "image/jpeg"),
    (b"FORM" + _ANY4 + b"AIFF", _ALL4 + _ANY4 + _ALL4, False, "audio/aiff"),
    (b"ID3", None, False, "audio/mpeg"),
    (b"OggS\x00", None, False, "application/ogg"),
    (b"MThd\x00\x00\x00\x06", None, False, "audio/midi"),
    (b"RIFF" + _ANY4 + b"AVI ", _ALL4 + _ANY4 + _ALL4, False, "video/avi"),
    (b"RIFF" + _ANY4 + b"WAVE", _ALL4 + _ANY4 + _ALL4, False, "audio/wave"),
)
_AFTER_MP4: Final[tuple[tuple[bytes, bytes | None, bool, str], ...]] = (
    (b"\x1a\x45\xdf\xa3", None, False, "video/webm"),
    (b"\x00" * 34 + b"LP", b"\x00" * 34 + b"\xff\xff", False, "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00", None, False, "font/ttf"),
    (b"OTTO", None, False, "font/otf"),
    (b"ttcf", None, False, "font/collection"),
    (b"wOFF", None, False, "font/woff"),
    (b"wOF2", None, False, "font/woff2"),
    (b"\x1f\x8b\x08", None, False, "application/x-gzip"),
    (b"PK\x03\x04", None, False, "application/zip"),
    (b"Rar!\x1a\x07\x00", None, False, "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", None, False, "application/x-rar-compressed"),
    (b"\x00asm", None, False, "application/wasm"),
)

# Go's textSig: these control bytes make a body binary.
_BINARY_BYTES: Final = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def sniff_content_type(body: bytes) -> str:
    """A Content-Type for ``body`` the way Go's ``http.DetectContentType`` picks one."""
    data = body[:_SNIFF_BYTES]
    first = len(data) - len(data.lstrip(_WHITESPACE))
    head = data[first:].lower()
    for tag in _HTML_TAGS:
        if head.startswith(tag) and head[len(tag) : len(tag) + 1] in (b" ", b">"):
            return "text/html; charset=utf-8"
    found = _first_match(data, first, _SIGNATURES)
    if found is None:
        found = "video/mp4" if _is_mp4(data) else _first_match(data, first, _AFTER_MP4)
    if found is not None:
        return found
    if any(byte in _BINARY_BYTES for byte in data[first:]):
        return "application/octet-stream"
    return _TEXT


def _first_match(
    data: bytes, first: int, signatures: tuple[tuple[bytes, bytes | None, bool, str], ...]
) -> str | None:
    for pattern, mask, skip_ws, content_type in signatures:
        start = first if skip_ws else 0
        candidate = data[start : start + len(pattern)]
        if len(candidate) < len(pattern):
            continue
        if mask is None:
            if candidate == pattern:
                return content_type
        elif all(b & m == p for b, m, p in zip(candidate, mask, pattern, strict=True)):
            return content_type
    return None


def _is_mp4(data: bytes) -> bool:
    # An ISO-BMFF "ftyp" box whose brands (after the major brand's version) name mp4.
    if len(data) < 12:
        return False
    box_bytes = int.from_bytes(data[:4], "big")
    if len(data) < box_bytes or box_bytes % 4 != 0 or data[4:8] != b"ftyp":
        return False
    return any(data[at : at + 3] == b"mp4" for at in range(8, box_bytes, 4) if at != 12)
