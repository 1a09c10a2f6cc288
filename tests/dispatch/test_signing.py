"""Standard Webhooks signing of outgoing deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from eventgateway.dispatch.signing import sign_headers, signature

# The published Standard Webhooks test vector (also in the svix test suites).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_published_test_vector() -> None:
    headers = sign_headers(
        [VECTOR_SECRET], message_id=VECTOR_ID, timestamp_s=VECTOR_TIMESTAMP, body=VECTOR_BODY
    )

    assert headers == [
        ("webhook-id", VECTOR_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", VECTOR_SIGNATURE),
    ]


def test_signature_matches_an_independent_hmac() -> None:
    key = bytes(range(32))
    expected = base64.b64encode(
        hmac.new(key, b"evt-1.1700000000.hello", hashlib.sha256).digest()
    ).decode()

    headers = dict(
        sign_headers([OTHER_SECRET], message_id="evt-1", timestamp_s=1_700_000_000, body=b"hello")
    )

    assert headers["webhook-signature"] == "v1," + expected
    assert signature(key, message_id="evt-1", timestamp_s=1_700_000_000, body=b"hello") == (
        "v1," + expected
    )


def test_two_secrets_give_two_space_separated_signatures_in_order() -> None:
    def sign(*secrets: str) -> str:
        headers = sign_headers(
            secrets, message_id=VECTOR_ID, timestamp_s=VECTOR_TIMESTAMP, body=VECTOR_BODY
        )
        return dict(headers)["webhook-signature"]

    first, second = sign(VECTOR_SECRET), sign(OTHER_SECRET)

    both = {"webhook-signature": sign(VECTOR_SECRET, OTHER_SECRET)}

    assert both["webhook-signature"] == f"{first} {second}"


def test_no_secrets_no_headers() -> None:
    assert sign_headers([], message_id="m", timestamp_s=1, body=b"") == []


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "does not start with 'whsec_'"),
        ("whsec_not base64!", "is not standard base64"),
        ("whsec_abc", "is not standard base64"),  # bad padding
    ],
)
def test_malformed_secret_is_named_by_position_never_by_value(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        sign_headers([VECTOR_SECRET, secret], message_id="m", timestamp_s=1, body=b"")

    assert "#1" in str(caught.value)
    assert secret.removeprefix("whsec_") not in str(caught.value)
