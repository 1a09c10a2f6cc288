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


BIG = 2**64  # beyond what MessagePack, the delivery worker's wire, carries
INT_RANGE = "integers must be between -2**63 and 2**63-1 (64 bits), got "


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"data": {"n": [{"numeric": [">", BIG]}]}}, "filter.data.n: " + INT_RANGE + str(BIG)),
        ({"data": {"n": [-(2**70)]}}, "filter.data.n: " + INT_RANGE + str(-(2**70))),
        ({"data": {"n": [{"anything-but": 2**70}]}}, "filter.data.n: " + INT_RANGE),
        ({"data": {"n": [{"anything-but": ["x", BIG]}]}}, "filter.data.n: " + INT_RANGE),
        ({"$or": [{"source": ["/a"]}, {"data": {"n": [2**63]}}]},
         "filter.$or[1].data.n: " + INT_RANGE + str(2**63)),
    ],
    ids=["numeric", "value", "anything-but", "anything-but-list", "or"],
)  # fmt: skip
async def test_an_integer_beyond_64_bits_is_400_and_not_stored(
    api: ConfigAPI, pattern: Any, message: str
):
    response = await api.post("subscriptions", {**ASYNC, "filter": pattern})

    assert response.status_code == 400
    assert errors(response).startswith(SUB + message)
    assert (await api.http.get(api.url("subscriptions"))).json() == {"subscriptions": []}


async def test_an_update_to_an_integer_beyond_64_bits_is_400_and_keeps_the_filter(api: ConfigAPI):
    created = await api.subscription(**ASYNC, filter=PATTERN)
    url = api.url("subscriptions", created["subscriptionId"])

    response = await api.http.put(url, json={**ASYNC, "filter": {"data": {"n": [BIG]}}})

    assert response.status_code == 400
    assert errors(response).startswith(SUB + "filter.data.n: " + INT_RANGE)
    assert (await api.http.get(url)).json()["filter"] == PATTERN


async def test_the_64_bit_bounds_are_accepted_and_echoed_exactly(api: ConfigAPI):
    pattern = {"data": {"n": [2**63 - 1, -(2**63)], "m": [{"numeric": [">", 1.8e19]}]}}

    created = await api.subscription(**ASYNC, filter=pattern)

    assert created["filter"] == pattern


ASYNC_BODY = b'{"type": "async", "eventType": "test.event", "functionId": "test", '


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"filter": {"data": {"n": [NaN]}}}',
         "filter.data.n[0]: NaN is not a JSON number; numbers must be finite"),
        (b'"filter": {"data": {"n": [{"numeric": [">", -Infinity]}]}}}',
         "filter.data.n[0].numeric[1]: -Infinity is not a JSON number; numbers must be finite"),
        (b'"filter": {"$or": [{"a": ["x"]}, {"b": [{"anything-but": 1e400}]}]}}',
         "filter.$or[1].b[0].anything-but: number 1e400 is out of range; numbers must fit a "
         "64-bit float (up to about 1.8e308)"),
        # Keys land in fields case-insensitively, as in Go; the message uses the field's name.
        (b'"Filter": {"n": [Infinity]}}',
         "filter.n[0]: Infinity is not a JSON number; numbers must be finite"),
    ],
    ids=["nan", "infinity", "out-of-range", "any-case"],
)  # fmt: skip
async def test_a_number_json_cannot_hold_in_the_filter_is_named_by_its_path(
    api: ConfigAPI, body: bytes, message: str
):
    response = await api.http.post(api.url("subscriptions"), content=ASYNC_BODY + body)

    assert response.status_code == 400
    assert errors(response) == SUB + message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"metadata": {"k": NaN}, "filter": {"n": [NaN]}}',
         "invalid character 'N' looking for beginning of value"),
        (b'"metadata": {"k": 1e400}}',
         "json: cannot unmarshal number 1e400 into Go value of type float64"),
        # what follows the number does not parse: Go's message, which is about the number
        (b'"filter": {"n": [NaN]}, "x": }',
         "invalid character 'N' looking for beginning of value"),
    ],
    ids=["original-field-first", "original-field", "syntax-error-after"],
)  # fmt: skip
async def test_a_number_json_cannot_hold_elsewhere_keeps_gos_message(
    api: ConfigAPI, body: bytes, message: str
):
    response = await api.http.post(api.url("subscriptions"), content=ASYNC_BODY + body)

    assert response.status_code == 400
    assert errors(response) == SUB + message


async def test_an_empty_key_below_the_top_level_is_stored_and_echoed(api: ConfigAPI):
    pattern = {"data": {"": ["x"], "a": {"": [1]}}}

    created = await api.subscription(**ASYNC, filter=pattern)

    assert created["filter"] == pattern
    fetched = await api.http.get(api.url("subscriptions", created["subscriptionId"]))
    assert fetched.json()["filter"] == pattern


async def test_an_empty_top_level_key_is_400(api: ConfigAPI):
    response = await api.post("subscriptions", {**ASYNC, "filter": {"": ["x"]}})

    assert response.status_code == 400
    assert errors(response).startswith(SUB + "filter has an empty key; top-level keys name")


async def test_a_lone_surrogate_in_the_filter_is_stored_as_a_replacement_character(
    api: ConfigAPI,
):
    body = ASYNC_BODY + rb'"filter": {"data": {"n\ud800": ["a\udc00", {"prefix": "\ud800"}]}}}'

    response = await api.http.post(api.url("subscriptions"), content=body)

    assert response.status_code == 201, response.text
    assert response.json()["filter"] == {"data": {"n\ufffd": ["a\ufffd", {"prefix": "\ufffd"}]}}
