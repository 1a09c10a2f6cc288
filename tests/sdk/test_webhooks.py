"""The SDK's Standard Webhooks verifier, checked against the server's signer."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import inspect

import pytest

import eventgateway.sdk
from eventgateway.dispatch.signing import sign_headers
from eventgateway.errors import EventGatewayError
from eventgateway.sdk import WebhookVerificationError, WebhookVerifier, generate_secret, webhooks

NOW = 1_700_000_000
OLD = generate_secret()
NEW = generate_secret()
BODY = b'{"specversion":"1.0","id":"e1","type":"user.created"}'


def clock() -> float:
    return float(NOW)


def signed(secrets: list[str], *, body: bytes = BODY, at: int = NOW, id_: str = "d-1"):
    return dict(sign_headers(secrets, message_id=id_, timestamp_s=at, body=body))


def refused(verifier: WebhookVerifier, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(WebhookVerificationError) as caught:
        verifier.verify(body, headers)
    return caught.value.message


def test_round_trip() -> None:
    WebhookVerifier(OLD, clock=clock).verify(BODY, signed([OLD]))


def test_published_test_vector_verifies() -> None:
    verifier = WebhookVerifier("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", clock=lambda: 1614265330.0)

    verifier.verify(
        b'{"test": 2432232314}',
        {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
    )


def test_independent_hmac_signature_verifies() -> None:
    key = bytes(range(40))
    secret = "whsec_" + base64.b64encode(key).decode()
    mac = hmac.new(key, f"d-9.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    headers = {
        "webhook-id": "d-9",
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }

    WebhookVerifier(secret, clock=clock).verify(BODY, headers)


@pytest.mark.parametrize("receiver_secret", [OLD, NEW])
def test_rotation_either_secret_accepts_a_doubly_signed_delivery(receiver_secret: str) -> None:
    WebhookVerifier(receiver_secret, clock=clock).verify(BODY, signed([OLD, NEW]))


@pytest.mark.parametrize("sender_secret", [OLD, NEW])
def test_a_verifier_holding_both_secrets_accepts_either(sender_secret: str) -> None:
    WebhookVerifier([OLD, NEW], clock=clock).verify(BODY, signed([sender_secret]))


def test_wrong_secret_is_refused() -> None:
    message = refused(WebhookVerifier(NEW, clock=clock), BODY, signed([OLD]))

    assert message.startswith("no matching signature")


@pytest.mark.parametrize(
    ("header", "value"),
    [("webhook-id", "d-2"), ("webhook-timestamp", str(NOW + 1))],
)
def test_tampered_id_or_timestamp_is_refused(header: str, value: str) -> None:
    headers = {**signed([OLD]), header: value}

    assert refused(WebhookVerifier(OLD, clock=clock), BODY, headers).startswith("no matching")


def test_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"user.created", b"user.deleted")

    message = refused(WebhookVerifier(OLD, clock=clock), tampered, signed([OLD]))

    assert message.startswith("no matching signature")


def test_header_names_are_case_insensitive_and_str_bodies_work() -> None:
    headers = {name.upper(): value for name, value in signed([OLD]).items()}

    WebhookVerifier(OLD, clock=clock).verify(BODY.decode(), headers)


def test_other_signature_versions_are_skipped() -> None:
    headers = signed([OLD])
    headers["webhook-signature"] = "v1a,AAAA v2,BBBB " + headers["webhook-signature"]

    WebhookVerifier(OLD, clock=clock).verify(BODY, headers)


def test_only_foreign_versions_are_refused() -> None:
    headers = {**signed([OLD]), "webhook-signature": "v1a,AAAA"}

    assert refused(WebhookVerifier(OLD, clock=clock), BODY, headers).startswith("no matching")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(missing: str) -> None:
    headers = signed([OLD])
    del headers[missing]

    assert refused(WebhookVerifier(OLD, clock=clock), BODY, headers) == (
        f"missing header(s): {missing}"
    )


def test_no_headers_names_all_three() -> None:
    assert refused(WebhookVerifier(OLD, clock=clock), BODY, {}) == (
        "missing header(s): webhook-id, webhook-timestamp, webhook-signature"
    )


@pytest.mark.parametrize(
    ("offset_s", "accepted"),
    [(-300, True), (300, True), (-301, False), (301, False), (0, True)],
)
def test_default_tolerance_is_five_minutes_either_way(offset_s: int, accepted: bool) -> None:
    headers = signed([OLD], at=NOW + offset_s)
    verifier = WebhookVerifier(OLD, clock=clock)

    if accepted:
        verifier.verify(BODY, headers)
    else:
        message = refused(verifier, BODY, headers)
        assert ("too old" if offset_s < 0 else "in the future") in message


def test_tolerance_is_configurable() -> None:
    headers = signed([OLD], at=NOW - 3_600)

    WebhookVerifier(OLD, tolerance_s=3_600, clock=clock).verify(BODY, headers)
    assert "too old" in refused(WebhookVerifier(OLD, tolerance_s=60, clock=clock), BODY, headers)


@pytest.mark.parametrize("timestamp", ["soon", "1_700_000_000", "+1700000000", "1.7e9"])
def test_timestamp_must_be_plain_unix_seconds(timestamp: str) -> None:
    headers = {**signed([OLD]), "webhook-timestamp": timestamp}

    message = refused(WebhookVerifier(OLD, clock=clock), BODY, headers)

    assert message == f"webhook-timestamp {timestamp!r} is not unix seconds"


def test_real_clock_accepts_a_fresh_signature() -> None:
    import time

    WebhookVerifier(OLD).verify(BODY, signed([OLD], at=int(time.time())))


def test_prefix_is_optional_for_the_verifier() -> None:
    WebhookVerifier(OLD.removeprefix("whsec_"), clock=clock).verify(BODY, signed([OLD]))


@pytest.mark.parametrize(
    ("secrets", "problem"),
    [
        ([], "at least one secret"),
        (["whsec_###"], "secret #0 is not standard base64"),
        (["whsec_"], "secret #0 is empty"),
    ],
)
def test_bad_verifier_configuration(secrets: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WebhookVerifier(secrets)


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance_s must not be negative"):
        WebhookVerifier(OLD, tolerance_s=-1)


def test_repr_hides_the_secrets() -> None:
    text = repr(WebhookVerifier([OLD, NEW]))

    assert text == "WebhookVerifier(<2 secret(s)>, tolerance_s=300)"


def test_generate_secret_format() -> None:
    secret = generate_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:], validate=True)) == 32
    assert generate_secret() != secret
    assert len(base64.b64decode(generate_secret(24)[6:])) == 24


@pytest.mark.parametrize("n_bytes", [23, 65])
def test_generate_secret_bounds(n_bytes: int) -> None:
    with pytest.raises(ValueError, match="between 24 and 64"):
        generate_secret(n_bytes)


def test_error_is_part_of_the_error_tree() -> None:
    assert issubclass(WebhookVerificationError, EventGatewayError)


def test_sdk_exports() -> None:
    assert sorted(eventgateway.sdk.__all__) == [
        "AsyncEventGateway",
        "EmitResult",
        "EventGateway",
        "GatewayError",
        "WebhookVerificationError",
        "WebhookVerifier",
        "generate_secret",
    ]


def test_sdk_module_imports_no_server_code() -> None:
    tree = ast.parse(inspect.getsource(webhooks))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }

    own = {name for name in imported if name.startswith("eventgateway")}

    assert own == {"eventgateway.errors"}
