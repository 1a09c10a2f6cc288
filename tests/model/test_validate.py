"""Bodies → entities: normalisation, the original's validator texts and templates."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.errors import ValidationError
from eventgateway.model.entities import Cors, EventType, Function, Subscription
from eventgateway.model.validate import (
    is_valid_space,
    parse_cors,
    parse_event_type,
    parse_function,
    parse_subscription,
)

METHODS_TAG = "eq=GET|eq=POST|eq=DELETE|eq=PUT|eq=PATCH|eq=HEAD|eq=OPTIONS"


def tag(struct: str, field: str, rule: str) -> str:
    return (
        f"Key: '{struct}.{field}' Error:Field validation for '{field}' failed on the '{rule}' tag"
    )


def message_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    assert caught.value.status_code == 400
    return caught.value.message


# -- spaces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "valid"),
    [("default", True), ("a.b-c_d", True), ("abc", True), ("ab", False), ("a b", False)],
)
def test_space_rule(space: str, valid: bool) -> None:
    assert is_valid_space(space) is valid


@pytest.mark.parametrize(("space", "rule"), [("ab", "min"), ("a/b", "space"), ("sp ce", "space")])
def test_invalid_space_on_write_is_a_validator_error(space: str, rule: str) -> None:
    message = message_of(parse_event_type, space, b'{"name": "e"}')

    assert message == "Event Type doesn't validate. Validation error: " + tag("Type", "Space", rule)


def test_trailing_newline_is_not_a_valid_space() -> None:
    assert not is_valid_space("abc\n")


# -- event types -------------------------------------------------------------------------


def test_event_type_from_body() -> None:
    body = b'{"name": "user.created", "authorizerId": "auth", "metadata": {"service": "s"}}'

    assert parse_event_type("acme", body) == EventType(
        space="acme", name="user.created", authorizer_id="auth", metadata={"service": "s"}
    )


def test_event_type_name_has_no_character_rule() -> None:
    assert parse_event_type("acme", {"name": "any thing/at all"}).name == "any thing/at all"


def test_event_type_update_takes_the_name_from_the_url() -> None:
    assert parse_event_type("acme", b'{"name": "ignored"}', name="from.url").name == "from.url"


def test_event_type_body_space_is_ignored_and_empty_metadata_dropped() -> None:
    parsed = parse_event_type("acme", b'{"name": "e", "space": "other", "metadata": {}}')

    assert parsed == EventType(space="acme", name="e")


def test_event_type_requires_a_name() -> None:
    message = message_of(parse_event_type, "acme", b"{}")

    assert message == "Event Type doesn't validate. Validation error: " + tag(
        "Type", "Name", "required"
    )


def test_every_failing_field_is_listed_on_its_own_line() -> None:
    message = message_of(parse_event_type, "x", b"null")

    assert message == (
        "Event Type doesn't validate. Validation error: "
        + tag("Type", "Space", "min")
        + "\n"
        + tag("Type", "Name", "required")
    )


@pytest.mark.parametrize(("body", "detail"), [(b"", "EOF"), (b"{", "unexpected EOF")])
def test_event_type_decode_errors_use_the_template(body: bytes, detail: str) -> None:
    assert message_of(parse_event_type, "acme", body) == (
        f"Event Type doesn't validate. Validation error: {detail}"
    )


# -- functions ---------------------------------------------------------------------------

FUNCTION_PREFIX = "Function doesn't validate. Validation error: "


def test_http_function_echo_keeps_only_known_keys() -> None:
    body = b'{"functionId": "f", "type": "http", "provider": {"URL": "http://x/y?q=1", "arn": "a"}}'

    assert parse_function("acme", body) == Function(
        space="acme", function_id="f", type="http", provider={"url": "http://x/y?q=1"}
    )


def test_lambda_echo_has_fixed_order_drops_empty_and_keeps_credentials() -> None:
    body = {
        "functionId": "svc-dev-hello",
        "type": "awslambda",
        "provider": {
            "awsSecretAccessKey": "secret",
            "awsSessionToken": "",
            "region": "us-east-1",
            "awsAccessKeyId": "AKIA",
            "arn": "arn:aws:lambda:us-east-1:123:function:svc-dev-hello",
        },
    }

    provider = parse_function("acme", body).provider

    assert list(provider.items()) == [
        ("arn", "arn:aws:lambda:us-east-1:123:function:svc-dev-hello"),
        ("region", "us-east-1"),
        ("awsAccessKeyId", "AKIA"),
        ("awsSecretAccessKey", "secret"),
    ]


@pytest.mark.parametrize(
    ("type_", "provider", "echo"),
    [
        (
            "awssqs",
            {"queueUrl": "https://q", "region": "r"},
            {"queueUrl": "https://q", "region": "r"},
        ),
        ("awskinesis", {"streamName": "s", "region": "r"}, {"streamName": "s", "region": "r"}),
        (
            "awsfirehose",
            {"region": "r", "deliveryStreamName": "d"},
            {"deliveryStreamName": "d", "region": "r"},
        ),
    ],
)
def test_connector_types_are_accepted_and_echoed(
    type_: str, provider: dict[str, str], echo: dict[str, str]
) -> None:
    fn = parse_function("acme", {"functionId": "c", "type": type_, "provider": provider})

    assert list(fn.provider.items()) == list(echo.items())


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"functionId": "f"}', "provider configuration not set"),
        (b'{"functionId": "f", "type": "gcf", "provider": {}}', "provider gcf not supported"),
        (b'{"functionId": "f", "type": "http"}', "provider configuration not set"),
        (
            b'{"functionId": "f", "type": "http", "provider": null}',
            "provider configuration not set",
        ),
        (
            b'{"functionId": "f", "type": "http", "provider": {}}',
            "missing required fields for HTTP endpoint",
        ),
        (
            b'{"functionId": "f", "type": "http", "provider": {"url": "example.com"}}',
            "missing required fields for HTTP endpoint",
        ),
        (
            b'{"functionId": "f", "type": "http", "provider": {"url": "/relative"}}',
            "missing required fields for HTTP endpoint",
        ),
        (
            b'{"functionId": "f", "type": "awslambda", "provider": {"arn": "a"}}',
            "missing required fields for AWS Lambda function",
        ),
        (
            b'{"functionId": "f", "type": "awssqs", "provider": {"region": "r"}}',
            "missing required fields for AWS SQS function",
        ),
        (
            b'{"functionId": "f", "type": "awskinesis", "provider": {"region": "r"}}',
            "missing required fields for AWS Kinesis function",
        ),
        (
            b'{"functionId": "f", "type": "awsfirehose", "provider": {"region": "r"}}',
            "missing required fields for AWS Firehose function",
        ),
        (
            b'{"functionId": "f", "type": "http", "provider": "http://x"}',
            "unable to load function provider config: json: cannot unmarshal string into "
            "Go value of type http.HTTP",
        ),
        (
            b'{"functionId": "f", "type": "http", "provider": {"url": 5}}',
            "unable to load function provider config: json: cannot unmarshal number into "
            "Go struct field HTTP.url of type string",
        ),
        (
            b'{"functionId": 5, "type": "http"}',
            "json: cannot unmarshal number into Go struct field functionJSON.functionId "
            "of type function.ID",
        ),
        (b"", "EOF"),
    ],
)
def test_function_errors(body: bytes, detail: str) -> None:
    assert message_of(parse_function, "acme", body) == FUNCTION_PREFIX + detail


@pytest.mark.parametrize(
    ("function_id", "rule"), [("", "required"), ("has space", "functionid"), ("a/b", "functionid")]
)
def test_function_id_rule(function_id: str, rule: str) -> None:
    body = {"functionId": function_id, "type": "http", "provider": {"url": "http://x"}}

    assert message_of(parse_function, "acme", body) == FUNCTION_PREFIX + tag("Function", "ID", rule)


def test_function_update_takes_the_id_from_the_url() -> None:
    body = {"functionId": "ignored", "type": "http", "provider": {"url": "http://x"}}

    assert parse_function("acme", body, function_id="from-url").function_id == "from-url"


# -- subscriptions -----------------------------------------------------------------------

SUBSCRIPTION_PREFIX = "Subscription doesn't validate. Validation error: "


def test_subscription_is_normalised() -> None:
    body = (
        b'{"type": "sync", "eventType": "http.request", "functionId": "f",'
        b' "path": "users", "method": "get"}'
    )

    sub = parse_subscription("acme", body)

    assert (sub.path, sub.method) == ("/users", "GET")
    assert sub.subscription_id == "c3luYyxodHRwLnJlcXVlc3QsJTJGdXNlcnMsR0VU"


def test_subscription_defaults_are_root_path_and_post() -> None:
    sub = parse_subscription("acme", {"type": "async", "eventType": "e", "functionId": "f"})

    assert sub == Subscription(
        space="acme",
        subscription_id="YXN5bmMsZSxmLCUyRixQT1NU",
        type="async",
        event_type="e",
        function_id="f",
        path="/",
        method="POST",
    )


def test_subscription_keeps_trailing_and_double_slashes() -> None:
    sub = parse_subscription(
        "acme", {"type": "async", "eventType": "e", "functionId": "f", "path": "//a/"}
    )

    assert sub.path == "//a/"


def test_subscription_reports_every_failing_field() -> None:
    message = message_of(
        parse_subscription, "acme", {"type": "push", "eventType": "bad name", "method": "FETCH"}
    )

    assert message == SUBSCRIPTION_PREFIX + "\n".join(
        [
            tag("Subscription", "Type", "eq=async|eq=sync"),
            tag("Subscription", "EventType", "eventType"),
            tag("Subscription", "FunctionID", "required"),
            tag("Subscription", "Method", METHODS_TAG),
        ]
    )


def test_subscription_required_fields() -> None:
    message = message_of(parse_subscription, "acme", b"{}")

    assert message == SUBSCRIPTION_PREFIX + "\n".join(
        [
            tag("Subscription", "Type", "required"),
            tag("Subscription", "EventType", "required"),
            tag("Subscription", "FunctionID", "required"),
        ]
    )


# -- CORS --------------------------------------------------------------------------------

CORS_PREFIX = "CORS configuration doesn't validate. Validation error: "


def test_cors_defaults() -> None:
    assert parse_cors("acme", b'{"method": "GET", "path": "/test"}') == Cors(
        space="acme",
        cors_id="GET%2Ftest",
        method="GET",
        path="/test",
        allowed_origins=["*"],
        allowed_methods=["HEAD", "GET", "POST"],
        allowed_headers=["Origin", "Accept", "Content-Type"],
        allow_credentials=False,
    )


def test_cors_lists_given_replace_defaults_and_empty_ones_do_not() -> None:
    cors = parse_cors(
        "acme",
        {
            "method": "POST",
            "path": "/p",
            "allowedOrigins": ["https://a.example"],
            "allowedMethods": [],
            "allowCredentials": True,
        },
    )

    assert cors.allowed_origins == ["https://a.example"]
    assert cors.allowed_methods == ["HEAD", "GET", "POST"]
    assert cors.allow_credentials is True


def test_cors_method_is_not_upper_cased_and_path_not_prefixed() -> None:
    message = message_of(parse_cors, "acme", {"method": "get", "path": "test"})

    assert message == CORS_PREFIX + "\n".join(
        [tag("CORS", "Method", METHODS_TAG), tag("CORS", "Path", "path")]
    )


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("http://example.com", True),
        ("https://example.com:8443/a/b?q=1#frag", True),
        ("http:/local/path", True),
        ("http://user@host/x", True),
        ("", False),
        ("example.com/x", False),
        ("http:foo", False),
        ("1http://x", False),
        ("http://ex ample.com/", False),
        ("http://x/\x7f", False),
        ("#only-fragment", False),
    ],
)
def test_http_url_must_be_an_absolute_request_uri(url: str, valid: bool) -> None:
    body = {"functionId": "f", "type": "http", "provider": {"url": url}}

    if valid:
        assert parse_function("acme", body).provider == {"url": url}
    else:
        assert message_of(parse_function, "acme", body) == (
            FUNCTION_PREFIX + "missing required fields for HTTP endpoint"
        )
