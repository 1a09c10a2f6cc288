"""Claimed spaces and their API keys as they sit in the config store (pure).

Stored under kind ``spaces`` (key: the space's name) and kind ``keys`` (key: the key id),
both in the space they belong to, so cluster mode's KV bucket and its watch carry them
like any other configuration. A key is stored as its hash only
(:mod:`eventgateway.auth.keys`). Times are Unix seconds.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["ApiKey", "Space", "decode_api_key", "decode_space", "encode_record"]


class Space(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """A claimed space.

    ``deleted_at`` marks a deleted space: its name stays taken (only the operator may
    claim it again), because its delivery log and function logs outlive it until
    retention removes them and must not pass to whoever claims the name next.
    """

    name: str
    created_at: float
    emit_requires_key: bool = False
    deleted_at: float | None = None

    @property
    def key(self) -> str:
        return self.name

    @property
    def active(self) -> bool:
        """Whether the space is claimed now (not deleted)."""
        return self.deleted_at is None


class ApiKey(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """One API key of a space: its id, the hash of its secret, scopes and expiry."""

    key_id: str
    space: str
    secret_hash: str
    scopes: list[str]
    created_at: float
    expires_at: float | None = None

    @property
    def key(self) -> str:
        return self.key_id


_encoder: Final = msgspec.json.Encoder()
_space_decoder: Final = msgspec.json.Decoder(Space)
_key_decoder: Final = msgspec.json.Decoder(ApiKey)


def encode_record(record: Space | ApiKey) -> bytes:
    """The stored JSON of a space or key."""
    return _encoder.encode(record)


def decode_space(raw: bytes) -> Space:
    """A stored space; ``msgspec.ValidationError``/``DecodeError`` if it is not one."""
    space: Space = _space_decoder.decode(raw)
    return space


def decode_api_key(raw: bytes) -> ApiKey:
    """A stored key; ``msgspec.ValidationError``/``DecodeError`` if it is not one."""
    key: ApiKey = _key_decoder.decode(raw)
    return key
