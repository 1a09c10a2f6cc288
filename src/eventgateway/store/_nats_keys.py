"""How ``(kind, space, key)`` becomes a NATS KV key, and back.

KV keys allow only ``[-/_=.a-zA-Z0-9]`` and ``.`` separates subject tokens, while space
names and entity ids may hold any character. So the kind (one of a fixed set of
identifiers) stays readable and the space and key are each written as ``=`` followed by
their UTF-8 in base64url without padding. The ``=`` keeps an empty name from becoming an
empty token, and since base64url never produces ``.`` the three tokens split without
ambiguity. Keeping space and key as separate tokens lets a consumer filter one
(kind, space) with a subject wildcard.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final, cast, get_args

from eventgateway.model.entities import Kind

__all__ = [
    "MAX_SUBJECT_BYTES",
    "decode_key",
    "decode_segment",
    "encode_key",
    "encode_segment",
    "fits",
    "kind_filter",
    "space_filter",
    "valid_prefix",
]

_KINDS: Final[frozenset[str]] = frozenset(get_args(Kind))
MAX_SUBJECT_BYTES: Final = 3072
"""The longest subject (or KV key) sent for client text. nats-server drops a connection
whose protocol line passes its ``max_control_line`` (4 KiB by default), and nats-py then
closes the client for good: every request on it fails from then on. A direct get puts
the subject in its own request subject, with the stream's name and a reply inbox."""
_MARK: Final = "="
# Bucket names allow only these characters; the prefix starts every bucket name.
_PREFIX: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def fits(subject: str) -> bool:
    """Whether ``subject`` (a KV key, a subject or a filter) is short enough to send."""
    return len(subject) <= MAX_SUBJECT_BYTES  # ASCII: tokens are base64url


def valid_prefix(prefix: str) -> bool:
    """Whether ``prefix`` can start a bucket, stream or consumer name."""
    return _PREFIX.fullmatch(prefix) is not None


def _encode(segment: str) -> str:
    raw = base64.urlsafe_b64encode(segment.encode("utf-8")).rstrip(b"=")
    return _MARK + raw.decode("ascii")


def _decode(token: str) -> str | None:
    if not token.startswith(_MARK):
        return None
    body = token[len(_MARK) :]
    try:
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    # The decoder tolerates stray characters: only the canonical spelling names an entry,
    # so two KV keys never map onto one (kind, space, key).
    return text if _encode(text) == token else None


def encode_segment(segment: str) -> str:
    """``segment`` (any text) as one subject token: ``=`` and its base64url, unpadded."""
    return _encode(segment)


def decode_segment(token: str) -> str | None:
    """The text of a token :func:`encode_segment` wrote, or ``None`` for any other token."""
    return _decode(token)


def encode_key(kind: Kind, space: str, key: str) -> str:
    """The KV key of one entry."""
    return f"{kind}.{_encode(space)}.{_encode(key)}"


def decode_key(kv_key: str) -> tuple[Kind, str, str] | None:
    """The (kind, space, key) of a KV key, or ``None`` for a key this store did not write."""
    parts = kv_key.split(".")
    if len(parts) != 3 or parts[0] not in _KINDS:
        return None
    space, key = _decode(parts[1]), _decode(parts[2])
    if space is None or key is None:
        return None
    return cast(Kind, parts[0]), space, key


def kind_filter(kind: Kind) -> str:
    """A KV key pattern matching every entry of one kind."""
    return f"{kind}.*.*"


def space_filter(kind: Kind, space: str) -> str:
    """A KV key pattern matching every entry of one kind in one space."""
    return f"{kind}.{_encode(space)}.*"
