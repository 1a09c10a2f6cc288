"""The added subscription and function fields: parsing, defaults and messages."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest

from eventgateway.errors import ValidationError
from eventgateway.model.delivery_options import (
    FunctionOptions,
    OptionError,
    SubscriptionOptions,
    function_options,
    parse_retry_policy,
    subscription_options,
)
from eventgateway.model.entities import RetryPolicy, Subscription, encode_entity
from eventgateway.model.validate import parse_function, parse_subscription

SUB = "Subscription doesn't validate. Validation error: "
FN = "Function doesn't validate. Validation error: "
ASYNC = {"type": "async", "eventType": "user.created", "functionId": "f"}
SYNC = {"type": "sync", "eventType": "http.request", "functionId": "f"}
HTTP_FN = {"functionId": "f", "type": "http", "provider": {"url": "http://fn/"}}


def secret(n_bytes: int = 32, fill: int = 7) -> str:
    return "whsec_" + base64.b64encode(bytes([fill]) * n_bytes).decode()


def message_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 400
    return caught.value.message


# -- retry policy -------------------------------------------------------------------------


def test_full_retry_policy() -> None:
    policy = parse_retry_policy(
        {
            "maxAttempts": 10,
            "maxAgeSeconds": 3600,
            "backoff": "linear",
            "initialDelayMs": 1000,
            "maxDelayMs": 60000,
            "jitter": False,
            "attemptTimeoutMs": 30000,
            "maxRetryAfterSeconds": 120.5,
        }
    )

    assert policy == RetryPolicy(
        max_attempts=10,
        max_age_s=3600.0,
        backoff="linear",
        initial_delay_ms=1000,
        max_delay_ms=60000,
        jitter=False,
        attempt_timeout_ms=30000,
        max_retry_after_s=120.5,
    )
    assert isinstance(policy.max_age_s, float)


def test_partial_policy_keeps_the_other_defaults() -> None:
    assert parse_retry_policy({"maxAttempts": 3}) == RetryPolicy(max_attempts=3)


def test_whole_floats_are_accepted_for_integer_knobs() -> None:
    policy = parse_retry_policy({"maxAttempts": 3.0})

    assert policy is not None
    assert policy.max_attempts == 3
    assert type(policy.max_attempts) is int


@pytest.mark.parametrize(
    "value", [None, {}, {"maxAttempts": 25, "maxAgeSeconds": 86400}, {"jitter": None}]
)
def test_absent_or_default_policy_is_none(value: Any) -> None:
    assert parse_retry_policy(value) is None


def test_explicit_defaults_are_left_out_of_the_json() -> None:
    # msgspec omits a default only when it is the very same object: values equal to the
    # defaults are swapped for them.
    policy = parse_retry_policy({"maxAttempts": 3, "initialDelayMs": 5000, "maxAgeSeconds": 86400})

    assert msgspec.json.encode(policy) == b'{"maxAttempts":3}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"maxAttempts": 0}, "retryPolicy.maxAttempts must be between 1 and 1000, got 0"),
        ({"maxAttempts": 1001}, "retryPolicy.maxAttempts must be between 1 and 1000, got 1001"),
        ({"maxAttempts": 2.5}, "retryPolicy.maxAttempts must be a whole number, got 2.5"),
        ({"maxAttempts": "3"}, 'retryPolicy.maxAttempts must be a whole number, got "3"'),
        ({"maxAttempts": True}, "retryPolicy.maxAttempts must be a whole number, got true"),
        (
            {"maxAgeSeconds": 0},
            "retryPolicy.maxAgeSeconds must be more than 0 and at most 2592000 (30 days), got 0",
        ),
        (
            {"maxAgeSeconds": 2592001},
            "retryPolicy.maxAgeSeconds must be more than 0 and at most 2592000 (30 days), "
            "got 2592001",
        ),
        ({"maxAgeSeconds": [1]}, "retryPolicy.maxAgeSeconds must be a number, got array"),
        (
            {"maxAgeSeconds": float("inf")},
            "retryPolicy.maxAgeSeconds must be a finite number, got inf",
        ),
        (
            {"backoff": "fibonacci"},
            'retryPolicy.backoff must be "exponential", "linear" or "constant", got "fibonacci"',
        ),
        (
            {"initialDelayMs": -1},
            "retryPolicy.initialDelayMs must be between 0 and 2592000000 (30 days), got -1",
        ),
        (
            {"initialDelayMs": 100, "maxDelayMs": 99},
            "retryPolicy.maxDelayMs (99) must be at least retryPolicy.initialDelayMs (100)",
        ),
        (
            {"initialDelayMs": 8000000},
            "retryPolicy.maxDelayMs (7200000, the default) must be at least "
            "retryPolicy.initialDelayMs (8000000)",
        ),
        ({"jitter": "yes"}, 'retryPolicy.jitter must be true or false, got "yes"'),
        (
            {"attemptTimeoutMs": 0},
            "retryPolicy.attemptTimeoutMs must be between 1 and 900000 (15 minutes), got 0",
        ),
        (
            {"attemptTimeoutMs": 900001},
            "retryPolicy.attemptTimeoutMs must be between 1 and 900000 (15 minutes), got 900001",
        ),
        (
            {"maxRetryAfterSeconds": -1},
            "retryPolicy.maxRetryAfterSeconds must be between 0 and 2592000 (30 days), got -1",
        ),
        (
            {"maxAttempt": 3},
            'retryPolicy has an unknown key "maxAttempt" (did you mean "maxAttempts"?)',
        ),
        (
            {"maxattempts": 3},
            'retryPolicy has an unknown key "maxattempts" (did you mean "maxAttempts"?)',
        ),
        (
            {"colour": "red"},
            'retryPolicy has an unknown key "colour" (known keys: maxAttempts, maxAgeSeconds, '
            "backoff, initialDelayMs, maxDelayMs, jitter, attemptTimeoutMs, "
            "maxRetryAfterSeconds)",
        ),
        ([1, 2], "retryPolicy must be an object, got array"),
        ("fast", "retryPolicy must be an object, got string"),
    ],
)
def test_bad_retry_policy(value: Any, message: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_retry_policy(value)

    assert caught.value.messages == [message]


def test_every_retry_policy_problem_is_reported() -> None:
    with pytest.raises(OptionError) as caught:
        parse_retry_policy({"maxAttempts": 0, "backoff": 1, "nope": 1})

    assert len(caught.value.messages) == 3


def test_long_bad_values_are_clipped() -> None:
    with pytest.raises(OptionError) as caught:
        parse_retry_policy({"backoff": "x" * 100})

    assert caught.value.messages[0].endswith('got "' + "x" * 40 + '…"')


# -- subscriptions ------------------------------------------------------------------------


def test_original_body_gets_the_defaults_and_the_original_json() -> None:
    subscription = parse_subscription("default", ASYNC)

    assert (subscription.delivery, subscription.retry_policy, subscription.ordered) == (
        "at-least-once",
        None,
        False,
    )
    assert b"delivery" not in encode_entity(subscription)


def test_async_subscription_with_every_option() -> None:
    body = {**ASYNC, "delivery": "at-most-once", "retryPolicy": {"maxAttempts": 3}, "ordered": True}

    subscription = parse_subscription("default", body)

    assert subscription.delivery == "at-most-once"
    assert subscription.retry_policy == RetryPolicy(max_attempts=3)
    assert subscription.ordered is True
    assert encode_entity(subscription).endswith(
        b',"delivery":"at-most-once","retryPolicy":{"maxAttempts":3},"ordered":true}'
    )


def test_options_do_not_change_the_subscription_id() -> None:
    plain = parse_subscription("default", ASYNC)
    tuned = parse_subscription("default", {**ASYNC, "ordered": True})

    assert tuned.subscription_id == plain.subscription_id


def test_explicit_default_delivery_is_left_out_of_the_json() -> None:
    body = b'{"type":"async","eventType":"e","functionId":"f","delivery":"at-least-once"}'

    assert b"delivery" not in encode_entity(parse_subscription("default", body))


def test_null_options_mean_not_given() -> None:
    body = {**ASYNC, "delivery": None, "retryPolicy": None, "ordered": None}

    assert parse_subscription("default", body) == parse_subscription("default", ASYNC)


def test_keys_match_case_insensitively_like_the_original_fields() -> None:
    subscription = parse_subscription(
        "default", b'{"type":"async","eventType":"e","functionId":"f","Ordered":true}'
    )

    assert subscription.ordered is True


def test_option_defaults_agree_with_the_entities() -> None:
    defaults = {f.name: f.default for f in msgspec.structs.fields(Subscription)}

    assert SubscriptionOptions().delivery is defaults["delivery"]
    assert FunctionOptions().content_mode == "structured"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"delivery": "once"}, 'delivery must be "at-least-once" or "at-most-once", got "once"'),
        ({"delivery": 1}, 'delivery must be "at-least-once" or "at-most-once", got 1'),
        ({"ordered": "true"}, 'ordered must be true or false, got "true"'),
        (
            {"retryPolicy": {"maxAttempts": 0}},
            "retryPolicy.maxAttempts must be between 1 and 1000, got 0",
        ),
    ],
)
def test_bad_subscription_option(extra: dict[str, Any], message: str) -> None:
    assert message_of(parse_subscription, "default", {**ASYNC, **extra}) == SUB + message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"delivery": "at-most-once"}, 'delivery "at-most-once"'),
        ({"retryPolicy": {"maxAttempts": 3}}, "retryPolicy"),
        ({"retryPolicy": {}}, "retryPolicy"),
        ({"ordered": True}, "ordered"),
    ],
)
def test_sync_subscriptions_refuse_async_options(extra: dict[str, Any], field: str) -> None:
    message = message_of(parse_subscription, "default", {**SYNC, **extra})

    assert message == SUB + (
        f"{field} is only for async subscriptions (a sync subscription is called once, "
        "while the request waits)"
    )


@pytest.mark.parametrize("extra", [{"delivery": "at-least-once"}, {"ordered": False}])
def test_sync_subscriptions_accept_the_defaults_spelled_out(extra: dict[str, Any]) -> None:
    assert parse_subscription("default", {**SYNC, **extra}).delivery == "at-least-once"


def test_original_errors_come_first() -> None:
    body = {"type": "async", "eventType": "e", "retryPolicy": {"maxAttempts": 0}}

    message = message_of(parse_subscription, "default", body)

    assert "FunctionID" in message
    assert "retryPolicy" not in message


def test_several_subscription_problems_are_joined_by_newlines() -> None:
    with pytest.raises(OptionError) as caught:
        subscription_options(
            {"delivery": "x", "ordered": 1, "retryPolicy": {"maxAttempts": 0}},
            subscription_type="sync",
        )

    # An invalid delivery is not also refused for being on a sync subscription.
    assert len(caught.value.messages) == 4
    assert str(caught.value) == "\n".join(caught.value.messages)


# -- functions ----------------------------------------------------------------------------


def test_function_with_secrets_and_binary_mode() -> None:
    secrets = [secret(24), secret(64, fill=9)]

    function = parse_function(
        "default", {**HTTP_FN, "signingSecrets": secrets, "contentMode": "binary"}
    )

    assert function.signing_secrets == secrets
    assert function.content_mode == "binary"
    assert encode_entity(function).endswith(
        b',"signingSecrets":["'
        + secrets[0].encode()
        + b'","'
        + secrets[1].encode()
        + b'"],"contentMode":"binary"}'
    )


@pytest.mark.parametrize(
    "extra", [{}, {"signingSecrets": []}, {"signingSecrets": None}, {"contentMode": "structured"}]
)
def test_function_defaults_are_left_out_of_the_json(extra: dict[str, Any]) -> None:
    function = parse_function("default", {**HTTP_FN, **extra})

    assert function.signing_secrets is None
    assert encode_entity(function) == (
        b'{"space":"default","functionId":"f","type":"http","provider":{"url":"http://fn/"}}'
    )


def test_function_update_takes_the_options_too() -> None:
    function = parse_function("default", {**HTTP_FN, "contentMode": "binary"}, function_id="g")

    assert (function.function_id, function.content_mode) == ("g", "binary")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("whsec_x", "signingSecrets must be a list of strings, got string"),
        (
            [secret(), secret(fill=1), secret(fill=2)],
            "signingSecrets may hold at most 2 secrets (the current one and, while rotating, "
            "the next), got 3",
        ),
        ([1], "signingSecrets[0] must be a string, got number"),
        (["abc"], 'signingSecrets[0] must start with "whsec_"'),
        (
            [secret(), "whsec_not*base64"],
            'signingSecrets[1] must be "whsec_" followed by standard base64 '
            "(A-Z a-z 0-9 + /, padded with =)",
        ),
        (
            ["whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode()],
            'signingSecrets[0] must be "whsec_" followed by standard base64 '
            "(A-Z a-z 0-9 + /, padded with =)",
        ),
        ([secret(23)], "signingSecrets[0] must encode 24 to 64 bytes, got 23"),
        ([secret(65)], "signingSecrets[0] must encode 24 to 64 bytes, got 65"),
        ([secret(), secret()], "signingSecrets[1] repeats signingSecrets[0]"),
    ],
)
def test_bad_signing_secrets(value: Any, message: str) -> None:
    assert message_of(parse_function, "default", {**HTTP_FN, "signingSecrets": value}) == (
        FN + message
    )


def test_secret_values_never_appear_in_messages() -> None:
    short = secret(10)

    message = message_of(parse_function, "default", {**HTTP_FN, "signingSecrets": [short]})

    assert short[6:] not in message


@pytest.mark.parametrize(
    ("value", "shown"), [("BINARY", '"BINARY"'), (True, "true"), ({}, "object")]
)
def test_bad_content_mode(value: Any, shown: str) -> None:
    message = message_of(parse_function, "default", {**HTTP_FN, "contentMode": value})

    assert message == FN + f'contentMode must be "structured" or "binary", got {shown}'


def test_function_problems_are_all_reported() -> None:
    with pytest.raises(OptionError) as caught:
        function_options({"signingSecrets": ["x"], "contentMode": "y"})

    assert len(caught.value.messages) == 2
