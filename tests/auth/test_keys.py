"""auth/keys.py: the key format, hashing, constant-time verification and expiry (pure)."""

from __future__ import annotations

import hashlib
import re

import pytest

from eventgateway.auth.keys import (
    format_key,
    generate_key,
    generate_operator_key,
    hash_secret,
    is_expired,
    parse_key,
    verify_secret,
)

KEY = re.compile(r"egk_[0-9a-f]{16}_[0-9a-f]{48}")


def test_a_new_key_has_the_documented_format_and_parses_back():
    new = generate_key()

    assert KEY.fullmatch(new.token)
    assert parse_key(new.token) == (new.key_id, new.token.rsplit("_", 1)[1])


def test_new_keys_are_random():
    tokens = {generate_key().token for _ in range(100)}
    ids = {parse_key(token)[0] for token in tokens}  # type: ignore[index]

    assert len(tokens) == 100
    assert len(ids) == 100


def test_only_the_hash_of_id_and_secret_is_kept():
    new = generate_key()
    key_id, secret = parse_key(new.token)  # type: ignore[misc]

    assert new.secret_hash == "sha256:" + hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()
    assert secret not in new.secret_hash
    assert new.token not in repr(new)


def test_verify_accepts_the_secret_and_nothing_else():
    new = generate_key()
    key_id, secret = parse_key(new.token)  # type: ignore[misc]
    other = generate_key()

    assert verify_secret(key_id, secret, new.secret_hash)
    assert not verify_secret(
        key_id, secret[:-1] + ("0" if secret[-1] != "0" else "1"), new.secret_hash
    )
    assert not verify_secret(other.key_id, secret, new.secret_hash)  # the id is hashed in
    assert not verify_secret(key_id, secret, other.secret_hash)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "egk_",
        "egk_0123456789abcdef",
        "egk_0123456789abcdef_" + "a" * 47,
        "egk_0123456789abcdef_" + "a" * 49,
        "egk_0123456789ABCDEF_" + "a" * 48,
        "EGK_0123456789abcdef_" + "a" * 48,
        "egk_0123456789abcdef_" + "a" * 48 + "\n",
        "Bearer egk_0123456789abcdef_" + "a" * 48,
        "ego_" + "a" * 48,
    ],
)
def test_malformed_tokens_do_not_parse(token: str):
    assert parse_key(token) is None


def test_format_and_hash_agree_with_parse():
    token = format_key("0123456789abcdef", "b" * 48)

    assert parse_key(token) == ("0123456789abcdef", "b" * 48)
    assert verify_secret("0123456789abcdef", "b" * 48, hash_secret("0123456789abcdef", "b" * 48))


def test_operator_keys_are_random_and_not_space_keys():
    first, second = generate_operator_key(), generate_operator_key()

    assert first != second
    assert first.startswith("ego_")
    assert len(first) == 52
    assert parse_key(first) is None


@pytest.mark.parametrize(
    ("expires_at", "now", "expired"),
    [(None, 1e12, False), (100.0, 99.999, False), (100.0, 100.0, True), (100.0, 101.0, True)],
)
def test_expiry_is_reached_at_the_instant_itself(
    expires_at: float | None, now: float, expired: bool
):
    assert is_expired(expires_at, now) is expired
