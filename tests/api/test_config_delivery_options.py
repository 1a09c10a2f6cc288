"""Configuration API: the added subscription and function fields, end to end in-process."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventgateway.store.sqlite import SqliteStore
from tests.api.support_config import ConfigAPI, config_api, errors

SUB = "Subscription doesn't validate. Validation error: "
FN = "Function doesn't validate. Validation error: "
ASYNC = {"type": "async", "eventType": "test.event", "functionId": "test"}
SYNC = {"type": "sync", "eventType": "http.request", "functionId": "test", "path": "/hi"}
POLICY = {"maxAttempts": 5, "backoff": "linear", "initialDelayMs": 1000, "jitter": False}
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEXT_SECRET = "whsec_" + base64.b64encode(b"n" * 24).decode()


async def setup(api: ConfigAPI) -> None:
    await api.event_type("test.event")
    await api.event_type("http.request")
    await api.function("test")


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        await setup(client)
        yield client


async def test_create_get_and_list_echo_the_options(api: ConfigAPI) -> None:
    body = {**ASYNC, "delivery": "at-most-once", "retryPolicy": POLICY, "ordered": True}

    created = await api.created("subscriptions", body)

    assert {k: created[k] for k in ("delivery", "retryPolicy", "ordered")} == {
        "delivery": "at-most-once",
        "retryPolicy": POLICY,
        "ordered": True,
    }
    got = await api.http.get(api.url("subscriptions", created["subscriptionId"]))
    listed = await api.http.get(api.url("subscriptions"))
    assert got.json() == created
    assert listed.json() == {"subscriptions": [created]}


async def test_defaults_keep_the_original_shape(api: ConfigAPI) -> None:
    body = {**ASYNC, "delivery": "at-least-once", "retryPolicy": {}, "ordered": False}

    created = await api.created("subscriptions", body)

    assert sorted(created) == sorted(
        ["space", "subscriptionId", "type", "eventType", "functionId", "path", "method"]
    )


async def test_options_survive_the_sqlite_store(tmp_path: Path) -> None:
    async with config_api(SqliteStore(tmp_path / "config.db")) as api:
        await setup(api)
        created = await api.subscription(**ASYNC, retryPolicy=POLICY, ordered=True)

        got = await api.http.get(api.url("subscriptions", created["subscriptionId"]))

    assert got.json() == created


async def test_put_changes_the_retry_policy(api: ConfigAPI) -> None:
    created = await api.subscription(**ASYNC, retryPolicy=POLICY)

    response = await api.http.put(
        api.url("subscriptions", created["subscriptionId"]),
        json={**ASYNC, "retryPolicy": {"maxAttempts": 50}, "ordered": True},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {**created, "retryPolicy": {"maxAttempts": 50}, "ordered": True}
    got = await api.http.get(api.url("subscriptions", created["subscriptionId"]))
    assert got.json() == response.json()


async def test_put_without_the_options_returns_them_to_the_defaults(api: ConfigAPI) -> None:
    created = await api.subscription(**ASYNC, delivery="at-most-once", retryPolicy=POLICY)

    response = await api.http.put(api.url("subscriptions", created["subscriptionId"]), json=ASYNC)

    assert response.status_code == 200
    assert "retryPolicy" not in response.json()
    assert "delivery" not in response.json()


async def test_put_with_a_bad_policy_is_400_and_changes_nothing(api: ConfigAPI) -> None:
    created = await api.subscription(**ASYNC, retryPolicy=POLICY)
    url = api.url("subscriptions", created["subscriptionId"])

    response = await api.http.put(url, json={**ASYNC, "retryPolicy": {"maxAttempts": 0}})

    assert response.status_code == 400
    assert errors(response) == SUB + "retryPolicy.maxAttempts must be between 1 and 1000, got 0"
    assert (await api.http.get(url)).json() == created


async def test_put_of_a_sync_subscription_refuses_async_options(api: ConfigAPI) -> None:
    created = await api.subscription(**SYNC)

    response = await api.http.put(
        api.url("subscriptions", created["subscriptionId"]), json={**SYNC, "ordered": True}
    )

    assert response.status_code == 400
    assert errors(response).startswith(SUB + "ordered is only for async subscriptions")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"retryPolicy": {"maxAttempts": 1001}},
            "retryPolicy.maxAttempts must be between 1 and 1000, got 1001",
        ),
        (
            {"retryPolicy": {"backoff": "random"}},
            'retryPolicy.backoff must be "exponential", "linear" or "constant", got "random"',
        ),
        (
            {"retryPolicy": {"retries": 3}},
            'retryPolicy has an unknown key "retries" (known keys: maxAttempts, maxAgeSeconds, '
            "backoff, initialDelayMs, maxDelayMs, jitter, attemptTimeoutMs, "
            "maxRetryAfterSeconds)",
        ),
        (
            {"retryPolicy": {"initialDelayMs": 10, "maxDelayMs": 5}},
            "retryPolicy.maxDelayMs (5) must be at least retryPolicy.initialDelayMs (10)",
        ),
        (
            {"delivery": "exactly-once"},
            'delivery must be "at-least-once" or "at-most-once", got "exactly-once"',
        ),
        ({"ordered": "yes"}, 'ordered must be true or false, got "yes"'),
    ],
)
async def test_bad_values_are_400_naming_the_field(
    api: ConfigAPI, extra: dict[str, Any], message: str
) -> None:
    response = await api.post("subscriptions", {**ASYNC, **extra})

    assert response.status_code == 400
    assert errors(response) == SUB + message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"delivery": "at-most-once"}, 'delivery "at-most-once"'),
        ({"retryPolicy": {"maxAttempts": 2}}, "retryPolicy"),
        ({"ordered": True}, "ordered"),
    ],
)
async def test_sync_with_async_options_is_400(
    api: ConfigAPI, extra: dict[str, Any], field: str
) -> None:
    response = await api.post("subscriptions", {**SYNC, **extra})

    assert response.status_code == 400
    assert errors(response) == SUB + (
        f"{field} is only for async subscriptions (a sync subscription is called once, "
        "while the request waits)"
    )


# -- functions ----------------------------------------------------------------------------


async def test_function_options_echo_and_update(api: ConfigAPI) -> None:
    created = await api.function("signed", signingSecrets=[SECRET], contentMode="binary")

    assert created["signingSecrets"] == [SECRET]
    assert created["contentMode"] == "binary"
    rotated = await api.http.put(
        api.url("functions", "signed"),
        json={
            "type": "http",
            "provider": {"url": "http://fn/"},
            "signingSecrets": [SECRET, NEXT_SECRET],
        },
    )
    assert rotated.status_code == 200
    assert rotated.json()["signingSecrets"] == [SECRET, NEXT_SECRET]
    assert "contentMode" not in rotated.json()
    got = await api.http.get(api.url("functions", "signed"))
    assert got.json() == rotated.json()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"signingSecrets": ["secret"]}, 'signingSecrets[0] must start with "whsec_"'),
        (
            {"signingSecrets": [SECRET, NEXT_SECRET, SECRET]},
            "signingSecrets may hold at most 2 secrets (the current one and, while rotating, "
            "the next), got 3",
        ),
        ({"contentMode": "batch"}, 'contentMode must be "structured" or "binary", got "batch"'),
    ],
)
async def test_bad_function_options_are_400(
    api: ConfigAPI, extra: dict[str, Any], message: str
) -> None:
    body = {"functionId": "f2", "type": "http", "provider": {"url": "http://fn/"}, **extra}

    response = await api.post("functions", body)

    assert response.status_code == 400
    assert errors(response) == FN + message


async def test_openapi_describes_the_options(api: ConfigAPI) -> None:
    schemas = (await api.http.get("/openapi.json")).json()["components"]["schemas"]

    for name in ("SubscriptionInput", "Subscription"):
        assert {"delivery", "retryPolicy", "ordered"} <= set(schemas[name]["properties"])
    for name in ("FunctionInput", "Function"):
        assert {"signingSecrets", "contentMode"} <= set(schemas[name]["properties"])
    policy = schemas["RetryPolicy"]
    assert policy["additionalProperties"] is False
    assert policy["properties"]["maxAttempts"]["default"] == 25
