"""Standard Webhooks signatures on outgoing deliveries (https://www.standardwebhooks.com/).

Each delivery to a function with ``signingSecrets`` carries three headers:

* ``webhook-id``: the message id, the same on every retry so receivers can de-duplicate;
* ``webhook-timestamp``: unix seconds when this attempt was signed;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` per active secret, space-separated,
  over ``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded part of the secret after
  ``whsec_``. Two secrets are signed during a rotation, so receivers holding either the old
  or the new secret accept the delivery.

Pure: stdlib only, no I/O. The receiver side is :mod:`eventgateway.sdk.webhooks`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

__all__ = ["SECRET_PREFIX", "sign_headers", "signature"]

SECRET_PREFIX: Final = "whsec_"


def _key(secret: str, index: int) -> bytes:
    # The message names the secret's position only: secrets must not reach logs.
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"signing secret #{index} does not start with {SECRET_PREFIX!r}")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"signing secret #{index} is not standard base64 after {SECRET_PREFIX!r}"
        ) from exc


def signature(key: bytes, *, message_id: str, timestamp_s: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of a message with an already decoded key.

    Args:
        key: the secret's decoded bytes.
        message_id: the ``webhook-id``.
        timestamp_s: the ``webhook-timestamp``, unix seconds.
        body: the request body exactly as sent.

    Returns:
        ``v1,`` followed by the standard base64 of the HMAC-SHA256.
    """
    signed = f"{message_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_headers(
    secrets: Sequence[str], *, message_id: str, timestamp_s: int, body: bytes
) -> list[tuple[str, str]]:
    """The Standard Webhooks headers for one attempt.

    Args:
        secrets: the function's active secrets (``whsec_`` + base64), at most two in
            practice; one signature is made per secret, in order.
        message_id: the ``webhook-id``; keep it stable across retries of one delivery.
        timestamp_s: unix seconds of this attempt (a fresh one per retry).
        body: the request body exactly as it will be sent.

    Returns:
        ``[("webhook-id", …), ("webhook-timestamp", …), ("webhook-signature", …)]``, or
        ``[]`` when ``secrets`` is empty (the delivery is not signed).

    Raises:
        ValueError: a secret lacks the ``whsec_`` prefix or is not standard base64 (the
            message names its position, never its value).
    """
    if not secrets:
        return []
    signatures = " ".join(
        signature(_key(secret, i), message_id=message_id, timestamp_s=timestamp_s, body=body)
        for i, secret in enumerate(secrets)
    )
    return [
        ("webhook-id", message_id),
        ("webhook-timestamp", str(timestamp_s)),
        ("webhook-signature", signatures),
    ]
