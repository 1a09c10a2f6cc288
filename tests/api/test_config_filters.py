"""Configuration API: a subscription's ``filter`` is validated, stored and echoed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.support_config import ConfigAPI, config_api, errors

SUB = "Subscription doesn't validate. Validation error: "
ASYNC = {"type": "async", "eventType": "test.event", "functionId": "test"}
SYNC = {"type": "sync", "eventType": "http.request", "functionId": "test", "path": "/hi"}
PATTERN = {
    "source": [{"prefix": "/services/"}],
    "data": {"plan": ["pro", "team"], "seats": [{"numeric": [">", 0, "<=", 5]}]},
    "$or": [{"region": ["eu"]}, {"region": [{"exists": False}]}],
}


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        await client.event_type("test.event")
        await client.event_type("http.request")
        await client.function("test")
        yield client


async def test_create_get_and_list_echo_the_filter(api: ConfigAPI):
    created = await api.subscription(**ASYNC, filter=PATTERN)

    fetched = await api.http.get(api.url("subscriptions", created["subscriptionId"]))
    listed = await api.http.get(api.url("subscriptions"))

    assert created["filter"] == PATTERN
    assert fetched.json() == created
    assert listed.json() == {"subscriptions": [created]}


async def test_without_a_filter_the_json_is_the_originals(api: ConfigAPI):
    created = await api.subscription(**ASYNC)

    assert "filter" not in created
    assert list(created) == [
        "space", "subscriptionId", "type", "eventType", "functionId", "path", "method",
    ]  # fmt: skip


async def test_null_filter_is_not_given(api: ConfigAPI):
    created = await api.subscription(**ASYNC, filter=None)

    assert "filter" not in created


async def test_update_replaces_and_clears_the_filter(api: ConfigAPI):
    created = await api.subscription(**ASYNC, filter=PATTERN)
    url = api.url("subscriptions", created["subscriptionId"])

    changed = await api.http.put(url, json={**ASYNC, "filter": {"data": {"plan": ["free"]}}})
    assert changed.status_code == 200
    assert changed.json()["filter"] == {"data": {"plan": ["free"]}}
    assert (await api.http.get(url)).json()["filter"] == {"data": {"plan": ["free"]}}

    # Like metadata: left out of the PUT body means none.
    cleared = await api.http.put(url, json=ASYNC)
    assert cleared.status_code == 200
    assert "filter" not in cleared.json()
    assert "filter" not in (await api.http.get(url)).json()


async def test_a_sync_subscription_refuses_a_filter(api: ConfigAPI):
    response = await api.post("subscriptions", {**SYNC, "filter": {"source": ["/x"]}})

    assert response.status_code == 400
    assert errors(response) == (
        SUB + "filter is only for async subscriptions: a sync subscription answers every "
        "request on its route, so it cannot pass over events; use type async, or filter in "
        "the function"
    )


async def test_update_of_a_sync_subscription_refuses_a_filter(api: ConfigAPI):
    created = await api.subscription(**SYNC)

    response = await api.http.put(
        api.url("subscriptions", created["subscriptionId"]),
        json={**SYNC, "filter": {"source": ["/x"]}},
    )

    assert response.status_code == 400
    assert errors(response).startswith(SUB + "filter is only for async subscriptions")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            {"data": {"plan": [{"numeric": [">"]}]}},
            'filter.data.plan: "numeric" needs operator/number pairs, e.g. [">", 0, "<=", 5]',
        ),
        ("pro", "filter must be an object, got string"),
        ({"eventType": ["x"]}, "filter.eventType: filters use CloudEvents 1.0 names"),
        ({"a": [{"prefix": "x"}] * 101}, "filter.a: a filter holds at most 100 values in all"),
    ],
    ids=["numeric", "not-object", "v01-name", "too-many-values"],
)
async def test_an_invalid_filter_is_400_naming_the_path(api: ConfigAPI, pattern: Any, message: str):
    response = await api.post("subscriptions", {**ASYNC, "filter": pattern})

    assert response.status_code == 400
    assert errors(response).startswith(SUB + message)
    assert (await api.http.get(api.url("subscriptions"))).json() == {"subscriptions": []}


async def test_the_openapi_document_describes_the_filter(api: ConfigAPI):
    document = (await api.http.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    for name in ("SubscriptionInput", "Subscription"):
        assert schemas[name]["properties"]["filter"] == {"$ref": "#/components/schemas/EventFilter"}
    assert schemas["EventFilter"]["type"] == "object"
    assert "$or" in schemas["EventFilter"]["properties"]
