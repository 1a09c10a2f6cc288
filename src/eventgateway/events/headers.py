"""HTTP header helpers that reproduce what Go's net/http showed the original gateway."""

from __future__ import annotations

from functools import lru_cache

__all__ = ["CACHEABLE_CHARS", "TOKEN_CHARS", "canonical_header_name", "header_text"]

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""The RFC 7230 token characters: what a header name may hold (Go's validHeaderFieldByte)."""
_TOKEN = frozenset(TOKEN_CHARS.encode())


# Cache entries hold a key and a value of the name's length; names come from clients and
# may be as long as the header limit (64 KiB), so only names this short are cached.
CACHEABLE_CHARS = 256


def canonical_header_name(name: bytes) -> str:
    """Return Go's canonical form of a header name: ``x-api-key`` → ``X-Api-Key``.

    A name holding a non-token byte is returned unchanged, as Go does. Cached because the
    same few names arrive on every request; the bounds (entries, and the length of a name
    worth caching) keep odd client names from piling up.
    """
    if len(name) <= CACHEABLE_CHARS:
        return _canonical_cached(name)
    return _canonical(name)


def _canonical(name: bytes) -> str:
    if not all(b in _TOKEN for b in name):
        return name.decode("latin-1")
    out = bytearray(name)
    upper = True
    for i, b in enumerate(out):
        if upper and 0x61 <= b <= 0x7A:
            out[i] = b - 0x20
        elif not upper and 0x41 <= b <= 0x5A:
            out[i] = b + 0x20
        upper = b == 0x2D  # '-'
    return out.decode("ascii")


_canonical_cached = lru_cache(maxsize=1024)(_canonical)


def header_text(value: bytes) -> str:
    """Decode a raw header value; invalid UTF-8 becomes U+FFFD, as Go's JSON encoder does.

    Whitespace around the value is not part of it (RFC 9110 §5.5; Go trims it too): the
    parser drops the leading run, the trailing one is dropped here.
    """
    return value.rstrip(b" \t").decode("utf-8", "replace")
