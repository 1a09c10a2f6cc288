"""Configuration API: functions (contract §3.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.support_config import ConfigAPI, config_api, errors

LAMBDA = {
    "functionId": "svc-dev-hello",
    "type": "awslambda",
    "provider": {
        "region": "us-east-1",
        "awsAccessKeyId": "AKIA",
        "awsSecretAccessKey": "secret",
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:svc-dev-hello",
    },
    "metadata": {"service": "svc", "stage": "dev"},
}


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        yield client


async def test_create_http_function(api: ConfigAPI) -> None:
    response = await api.post(
        "functions", {"functionId": "hello", "type": "http", "provider": {"url": "http://x/y"}}
    )

    assert response.status_code == 201
    assert response.text == (
        '{"space":"default","functionId":"hello","type":"http","provider":{"url":"http://x/y"}}\n'
    )


async def test_create_lambda_echoes_the_normalised_provider(api: ConfigAPI) -> None:
    response = await api.post("functions", LAMBDA)

    assert response.status_code == 201
    assert response.text == (
        '{"space":"default","functionId":"svc-dev-hello","type":"awslambda","provider":'
        '{"arn":"arn:aws:lambda:us-east-1:123456789012:function:svc-dev-hello",'
        '"region":"us-east-1","awsAccessKeyId":"AKIA","awsSecretAccessKey":"secret"},'
        '"metadata":{"service":"svc","stage":"dev"}}\n'
    )
    # The plugin compares the echo with what it sent to decide on an update.
    assert response.json()["provider"] == LAMBDA["provider"]


async def test_create_duplicate_is_409(api: ConfigAPI) -> None:
    await api.function("hello")

    response = await api.post(
        "functions", {"functionId": "hello", "type": "http", "provider": {"url": "http://z"}}
    )

    assert response.status_code == 409
    assert errors(response) == 'Function "hello" already registered.'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"functionId": "f"}, "provider configuration not set"),
        ({"functionId": "f", "type": "azure", "provider": {}}, "provider azure not supported"),
        # The original crashed on these two (nil pointer); 400 is the fix.
        ({"functionId": "f", "type": "http"}, "provider configuration not set"),
        ({"functionId": "f", "type": "http", "provider": None}, "provider configuration not set"),
        (
            {"functionId": "f", "type": "http", "provider": {"url": "not a url"}},
            "missing required fields for HTTP endpoint",
        ),
        (
            {"functionId": "f", "type": "awslambda", "provider": {"region": "r"}},
            "missing required fields for AWS Lambda function",
        ),
        (
            {"functionId": "bad id", "type": "http", "provider": {"url": "http://x"}},
            "Key: 'Function.ID' Error:Field validation for 'ID' failed on the 'functionid' tag",
        ),
    ],
)
async def test_create_invalid_is_400(api: ConfigAPI, body: object, message: str) -> None:
    response = await api.post("functions", body)

    assert response.status_code == 400
    assert errors(response) == f"Function doesn't validate. Validation error: {message}"


async def test_get_and_list(api: ConfigAPI) -> None:
    await api.function("a")
    await api.created("functions", LAMBDA)

    one = await api.http.get(api.url("functions", "a"))
    listed = await api.http.get(api.url("functions") + "?")

    assert one.json() == {
        "space": "default",
        "functionId": "a",
        "type": "http",
        "provider": {"url": "http://fn/"},
    }
    assert [f["functionId"] for f in listed.json()["functions"]] == ["svc-dev-hello", "a"]


async def test_get_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.get(api.url("functions", "nope"))

    assert response.status_code == 404
    assert errors(response) == 'Function "nope" not found.'


async def test_list_filters_by_metadata(api: ConfigAPI) -> None:
    await api.function("plain")
    await api.created("functions", LAMBDA)

    response = await api.http.get(api.url("functions") + "?metadata.service=svc&metadata.stage=dev")

    assert [f["functionId"] for f in response.json()["functions"]] == ["svc-dev-hello"]


async def test_update_replaces_type_provider_and_metadata(api: ConfigAPI) -> None:
    await api.function("hello", metadata={"old": "x"})

    response = await api.http.put(
        api.url("functions", "hello"),
        json={
            "functionId": "ignored",
            "type": "awssqs",
            "provider": {"queueUrl": "q", "region": "r"},
        },
    )

    assert response.status_code == 200
    assert response.json() == {
        "space": "default",
        "functionId": "hello",
        "type": "awssqs",
        "provider": {"queueUrl": "q", "region": "r"},
    }
    assert (await api.http.get(api.url("functions", "hello"))).json() == response.json()


async def test_update_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.put(
        api.url("functions", "nope"), json={"type": "http", "provider": {"url": "http://x"}}
    )

    assert response.status_code == 404
    assert errors(response) == 'Function "nope" not found.'


async def test_update_invalid_is_400(api: ConfigAPI) -> None:
    await api.function("hello")

    response = await api.http.put(
        api.url("functions", "hello"), json={"type": "http", "provider": {}}
    )

    assert response.status_code == 400
    assert errors(response) == (
        "Function doesn't validate. Validation error: missing required fields for HTTP endpoint"
    )


# URLs Go's url rule accepts but no call could use; the original took them (201) and then
# failed every call with "has an invalid URL".
UNCALLABLE_URLS = [
    ("http://[::1/", "Invalid IPv6 URL"),
    ("http://127.0.0.1:99999/", "Port out of range 0-65535"),
    ("http://127.0.0.1:abc/", "port can't be converted to integer"),
    ("http://", "it has no host"),
    ("http:///path", "it has no host"),
    ("ftp://x/", "the scheme must be http or https, not 'ftp'"),
    ("http://x:0/", "port 0 cannot be connected to"),
]


@pytest.mark.parametrize(("url", "reason"), UNCALLABLE_URLS)
async def test_an_url_no_call_could_use_is_400_on_create_and_update(
    api: ConfigAPI, url: str, reason: str
) -> None:
    await api.function("hello")
    body = {"type": "http", "provider": {"url": url}}

    created = await api.post("functions", {"functionId": "x5", **body})
    updated = await api.http.put(api.url("functions", "hello"), json=body)

    for response in (created, updated):
        assert response.status_code == 400
        message = errors(response)
        assert message.startswith(
            f"Function doesn't validate. Validation error: provider.url {url!r} cannot be called: "
        )
        assert reason in message
    assert (await api.http.get(api.url("functions", "x5"))).status_code == 404


@pytest.mark.parametrize(
    "url", ["https://[::1]:8443/p?q=1", "http://user:pw@fn.example:8080/", "HTTP://X/"]
)
async def test_callable_urls_are_accepted(api: ConfigAPI, url: str) -> None:
    response = await api.post(
        "functions", {"functionId": "f", "type": "http", "provider": {"url": url}}
    )

    assert response.status_code == 201, response.text


async def test_delete(api: ConfigAPI) -> None:
    await api.function("hello")

    response = await api.http.delete(api.url("functions", "hello"))

    assert response.status_code == 204
    assert response.content == b""


async def test_delete_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.delete(api.url("functions", "nope"))

    assert response.status_code == 404
    assert errors(response) == 'Function "nope" not found.'


async def test_delete_subscribed_is_400(api: ConfigAPI) -> None:
    await api.event_type("e")
    await api.function("f1")
    await api.subscription(type="async", eventType="e", functionId="f1")

    response = await api.http.delete(api.url("functions", "f1"))

    assert response.status_code == 400
    assert errors(response) == (
        "Function cannot be deleted because it's subscribed to a least one event."
    )


async def test_delete_authorizer_is_400(api: ConfigAPI) -> None:
    await api.function("auth")
    await api.event_type("secured", authorizerId="auth")

    response = await api.http.delete(api.url("functions", "auth"))

    assert response.status_code == 400
    assert errors(response) == (
        "Function auth cannot be deleted because is used as an authorizer for secured event type."
    )
