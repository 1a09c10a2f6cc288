"""Verify Standard Webhooks signatures on deliveries your function receives.

The gateway signs every delivery to a function that has ``signingSecrets`` with the
`Standard Webhooks <https://www.standardwebhooks.com/>`_ scheme. Check each request before
trusting it::

    from eventgateway.sdk import WebhookVerifier, WebhookVerificationError

    verifier = WebhookVerifier("whsec_…")

    def handle(body: bytes, headers: Mapping[str, str]) -> int:
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError:
            return 401
        ...

Pass the body exactly as received (before any JSON parsing). During a secret rotation the
gateway signs with both secrets, so a receiver may hold either; give the verifier both to
switch over without a gap. ``webhook-id`` stays the same across retries: use it to drop
duplicates.

This module is stdlib-only and imports no server code, so the SDK can ship alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from eventgateway.errors import EventGatewayError

__all__ = ["WebhookVerificationError", "WebhookVerifier", "generate_secret"]

_PREFIX: Final = "whsec_"
_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookVerificationError(EventGatewayError):
    """Raised when a delivery's signature headers do not prove it came from the gateway.

    ``message`` (also ``str(exc)``) says why: a missing header, a timestamp outside the
    tolerance, or no signature matching any of the verifier's secrets.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def generate_secret(n_bytes: int = 32) -> str:
    """A new random signing secret in the Standard Webhooks format.

    Args:
        n_bytes: key length; Standard Webhooks allows 24 to 64 bytes.

    Returns:
        ``whsec_`` followed by the standard base64 of ``n_bytes`` random bytes; put it in
        the function's ``signingSecrets`` and give it to the receiver.

    Raises:
        ValueError: ``n_bytes`` is outside 24..64.
    """
    if not 24 <= n_bytes <= 64:
        raise ValueError(f"n_bytes must be between 24 and 64, got {n_bytes}")
    return _PREFIX + base64.b64encode(_secrets.token_bytes(n_bytes)).decode("ascii")


def _decode_secret(secret: str, index: int) -> bytes:
    # Like the reference libraries, the whsec_ prefix is optional here. Messages name the
    # position only, so a secret never reaches a log.
    encoded = secret.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"secret #{index} is not standard base64 after {_PREFIX!r}") from exc
    if not key:
        raise ValueError(f"secret #{index} is empty")
    return key


class WebhookVerifier:
    """Checks the ``webhook-*`` headers of deliveries against one or more secrets.

    Args:
        secrets: one secret or several (``whsec_`` + base64; the prefix may be left out).
            A delivery is accepted when any ``v1`` signature matches any secret.
        tolerance_s: how far the ``webhook-timestamp`` may be from now, either way, in
            seconds; older deliveries are refused to block replays.
        clock: the current unix time in seconds; replace it in tests.

    Raises:
        ValueError: no secret was given, or one is not valid base64.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        secrets: str | Sequence[str],
        *,
        tolerance_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        given = [secrets] if isinstance(secrets, str) else list(secrets)
        if not given:
            raise ValueError("WebhookVerifier needs at least one secret")
        if tolerance_s < 0:
            raise ValueError(f"tolerance_s must not be negative, got {tolerance_s}")
        self._keys = [_decode_secret(s, i) for i, s in enumerate(given)]
        self.tolerance_s = tolerance_s
        self._clock = clock

    def __repr__(self) -> str:
        # Never show the keys.
        return f"WebhookVerifier(<{len(self._keys)} secret(s)>, tolerance_s={self.tolerance_s})"

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> None:
        """Check one delivery; return quietly if it is authentic and fresh.

        Args:
            body: the raw request body exactly as received (``str`` is UTF-8 encoded).
            headers: the request headers; names are matched case-insensitively.

        Raises:
            WebhookVerificationError: a ``webhook-id``, ``webhook-timestamp`` or
                ``webhook-signature`` header is missing, the timestamp is not an integer
                or is more than ``tolerance_s`` away from now, or no ``v1`` signature
                matches any secret.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        missing = [name for name in _HEADERS if not lowered.get(name)]
        if missing:
            raise WebhookVerificationError("missing header(s): " + ", ".join(missing))
        message_id = lowered["webhook-id"]
        timestamp_s = self._timestamp(lowered["webhook-timestamp"])
        payload = body.encode("utf-8") if isinstance(body, str) else body
        signed = f"{message_id}.{timestamp_s}.".encode() + payload
        expected = [
            base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in self._keys
        ]
        for candidate in lowered["webhook-signature"].split():
            version, _, encoded = candidate.partition(",")
            if version != "v1":
                continue  # e.g. v1a (asymmetric): not ours to check
            given = encoded.encode("ascii", "replace")
            # Compare with every key without stopping early, in constant time per key.
            matched = False
            for mac in expected:
                matched |= hmac.compare_digest(mac, given)
            if matched:
                return
        raise WebhookVerificationError("no matching signature: the body, id or secret differ")

    def _timestamp(self, raw: str) -> int:
        digits = raw.strip()
        # ASCII digits only: int() would also take "+1", "1_000" or other scripts' digits.
        if not (digits.isascii() and digits.isdigit()):
            raise WebhookVerificationError(f"webhook-timestamp {raw!r} is not unix seconds")
        timestamp_s = int(digits)
        now_s = self._clock()
        if timestamp_s < now_s - self.tolerance_s:
            raise WebhookVerificationError(
                f"webhook-timestamp {timestamp_s} is too old "
                f"(more than {self.tolerance_s} s before now)"
            )
        if timestamp_s > now_s + self.tolerance_s:
            raise WebhookVerificationError(
                f"webhook-timestamp {timestamp_s} is in the future "
                f"(more than {self.tolerance_s} s after now)"
            )
        return timestamp_s
