"""API keys: generation, format, parsing, hashing, verification and expiry (pure; no I/O).

A space key reads ``egk_<keyId>_<secret>``: ``keyId`` is 16 hex digits (public: it names
the key in listings and lets the gateway find the stored hash without a scan) and
``secret`` 48 hex digits (192 random bits from :mod:`secrets`). Only
``sha256("<keyId>:<secret>")`` is stored. The operator key reads ``ego_<secret>`` (or any
string of at least :data:`MIN_OPERATOR_KEY_CHARS` given in ``EG_OPERATOR_KEY``); only its
SHA-256 digest is kept in memory.

Why a plain SHA-256 and not a slow KDF (bcrypt, scrypt, Argon2): those exist to make
guessing *low-entropy* passwords expensive. A 192-bit random secret cannot be guessed
whatever the hash costs, so a fast hash is as safe and keeps a request's check at about a
microsecond. Hashes are compared with :func:`hmac.compare_digest` (constant time).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = [
    "KEY_PREFIX",
    "MIN_OPERATOR_KEY_CHARS",
    "OPERATOR_PREFIX",
    "NewKey",
    "format_key",
    "generate_key",
    "generate_operator_key",
    "hash_secret",
    "is_expired",
    "parse_key",
    "token_digest",
    "verify_secret",
]

KEY_PREFIX: Final = "egk_"
OPERATOR_PREFIX: Final = "ego_"
MIN_OPERATOR_KEY_CHARS: Final = 16
_KEY_ID_BYTES: Final = 8
_SECRET_BYTES: Final = 24
_KEY: Final = re.compile(r"egk_([0-9a-f]{16})_([0-9a-f]{48})")
_HASH_SCHEME: Final = "sha256:"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: ``token`` is shown to its owner once, then forgotten.

    ``repr`` leaves the token out, so a key in a log line or traceback leaks nothing.
    """

    key_id: str
    token: str
    secret_hash: str

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key_id!r})"


def format_key(key_id: str, secret: str) -> str:
    """The token a client sends: ``egk_<key_id>_<secret>``."""
    return f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed space key, else ``None``."""
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    return match.group(1), match.group(2)


def hash_secret(key_id: str, secret: str) -> str:
    """What is stored for a key: ``sha256:<hex>`` of ``<key_id>:<secret>``.

    The key id is hashed in, so a stored hash only ever matches under its own id.
    """
    digest = hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    return _HASH_SCHEME + digest


def verify_secret(key_id: str, secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` is the one ``stored_hash`` was made from (constant time)."""
    return hmac.compare_digest(hash_secret(key_id, secret), stored_hash)


def generate_key() -> NewKey:
    """A new random space key with its stored hash."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_hex(_SECRET_BYTES)
    return NewKey(key_id, format_key(key_id, secret), hash_secret(key_id, secret))


def generate_operator_key() -> str:
    """A new random operator key, ``ego_<48 hex digits>``."""
    return OPERATOR_PREFIX + secrets.token_hex(_SECRET_BYTES)


def token_digest(token: str) -> bytes:
    """SHA-256 of a whole token (how the operator key is held in memory)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def is_expired(expires_at: float | None, now: float) -> bool:
    """Whether a key with this expiry (Unix seconds; ``None``: never) is expired at ``now``."""
    return expires_at is not None and now >= expires_at
