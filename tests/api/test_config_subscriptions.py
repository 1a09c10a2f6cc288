"""Configuration API: subscriptions (contract §3.4, §4.2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.api.support_config import ConfigAPI, config_api, errors

ASYNC_ID = "YXN5bmMsdGVzdC5ldmVudCx0ZXN0LCUyRixQT1NU"  # async,test.event,test,%2F,POST


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        await client.event_type("test.event")
        await client.event_type("http.request")
        await client.function("test")
        await client.function("other")
        yield client


async def test_create_async_with_defaults(api: ConfigAPI) -> None:
    response = await api.post(
        "subscriptions", {"type": "async", "eventType": "test.event", "functionId": "test"}
    )

    assert response.status_code == 201
    assert response.text == (
        '{"space":"default","subscriptionId":"' + ASYNC_ID + '","type":"async",'
        '"eventType":"test.event","functionId":"test","path":"/","method":"POST"}\n'
    )


async def test_create_normalises_path_and_method(api: ConfigAPI) -> None:
    created = await api.subscription(
        type="sync", eventType="http.request", functionId="test", path="users/:id", method="get"
    )

    assert (created["path"], created["method"]) == ("/users/:id", "GET")
    assert created["subscriptionId"] == "c3luYyxodHRwLnJlcXVlc3QsJTJGdXNlcnMlMkY6aWQsR0VU"


async def test_duplicate_async_for_the_same_function_is_409(api: ConfigAPI) -> None:
    await api.subscription(type="async", eventType="test.event", functionId="test")

    response = await api.post(
        "subscriptions", {"type": "async", "eventType": "test.event", "functionId": "test"}
    )

    assert response.status_code == 409
    assert errors(response) == f'Subscription "{ASYNC_ID}" already exists.'


async def test_several_functions_may_subscribe_async_to_one_route(api: ConfigAPI) -> None:
    await api.subscription(type="async", eventType="test.event", functionId="test")

    response = await api.post(
        "subscriptions", {"type": "async", "eventType": "test.event", "functionId": "other"}
    )

    assert response.status_code == 201


async def test_second_sync_subscriber_of_a_route_is_409(api: ConfigAPI) -> None:
    first = await api.subscription(
        type="sync", eventType="http.request", functionId="test", path="/hello", method="GET"
    )

    response = await api.post(
        "subscriptions",
        {
            "type": "sync",
            "eventType": "http.request",
            "functionId": "other",
            "path": "/hello",
            "method": "GET",
        },
    )

    assert response.status_code == 409
    assert errors(response) == f'Subscription "{first["subscriptionId"]}" already exists.'


async def test_sync_route_taken_in_another_space_is_409(api: ConfigAPI) -> None:
    # New rule: Events API routing is global, so a second space may not claim the route.
    first = await api.subscription(
        type="sync", eventType="http.request", functionId="test", path="/hello", method="GET"
    )
    await api.event_type("http.request", space="elsewhere")
    await api.function("test", space="elsewhere")

    response = await api.post(
        "subscriptions",
        {
            "type": "sync",
            "eventType": "http.request",
            "functionId": "test",
            "path": "/hello",
            "method": "GET",
        },
        space="elsewhere",
    )

    assert response.status_code == 409
    assert errors(response) == f'Subscription "{first["subscriptionId"]}" already exists.'


async def test_async_route_may_repeat_in_another_space(api: ConfigAPI) -> None:
    await api.subscription(type="async", eventType="test.event", functionId="test")
    await api.event_type("test.event", space="elsewhere")
    await api.function("test", space="elsewhere")

    created = await api.subscription(
        space="elsewhere", type="async", eventType="test.event", functionId="test"
    )

    assert created["subscriptionId"] == ASYNC_ID


@pytest.mark.parametrize(
    ("existing", "new", "conflict"),
    [
        (
            "/users/:id",
            "/users/me",
            'parameter with different name ("id") already defined: for route: /users/me',
        ),
        ("/users/me", "/users/:id", "static route already defined for route: /users/:id"),
        (
            "/users/:id",
            "/users/:name",
            'parameter with different name ("id") already defined: for route: /users/:name',
        ),
        (
            "/files/*path",
            "/files/x",
            'wildcard with different name ("path") already defined: for route: /files/x',
        ),
        ("/a", "/b/*p/c", "wildcard must be the last parameter"),
    ],
)
async def test_sync_path_conflict_is_400(
    api: ConfigAPI, existing: str, new: str, conflict: str
) -> None:
    await api.subscription(
        type="sync", eventType="http.request", functionId="test", path=existing, method="GET"
    )

    response = await api.post(
        "subscriptions",
        {
            "type": "sync",
            "eventType": "http.request",
            "functionId": "test",
            "path": new,
            "method": "GET",
        },
    )

    assert response.status_code == 400
    assert errors(response) == f"Subscription path conflict: {conflict}"


@pytest.mark.parametrize(
    "other",
    [
        {"method": "POST", "eventType": "http.request", "path": "/users/me"},
        {"method": "GET", "eventType": "test.event", "path": "/users/me"},
        {"method": "GET", "eventType": "http.request", "path": "/users"},
    ],
)
async def test_no_conflict_across_methods_types_or_prefixes(
    api: ConfigAPI, other: dict[str, str]
) -> None:
    await api.subscription(
        type="sync", eventType="http.request", functionId="test", path="/users/:id", method="GET"
    )

    response = await api.post("subscriptions", {"type": "sync", "functionId": "test", **other})

    assert response.status_code == 201


async def test_unknown_event_type_is_400(api: ConfigAPI) -> None:
    response = await api.post(
        "subscriptions", {"type": "async", "eventType": "ghost", "functionId": "test"}
    )

    assert response.status_code == 400
    assert errors(response) == 'Event Type "ghost" not found.'


async def test_unknown_function_is_400(api: ConfigAPI) -> None:
    response = await api.post(
        "subscriptions", {"type": "async", "eventType": "test.event", "functionId": "ghost"}
    )

    assert response.status_code == 400
    assert errors(response) == 'Function "ghost" not found.'


async def test_invalid_body_is_400(api: ConfigAPI) -> None:
    response = await api.post(
        "subscriptions", {"type": "push", "eventType": "test.event", "functionId": "test"}
    )

    assert response.status_code == 400
    assert errors(response) == (
        "Subscription doesn't validate. Validation error: Key: 'Subscription.Type' "
        "Error:Field validation for 'Type' failed on the 'eq=async|eq=sync' tag"
    )


async def test_get_list_and_filters(api: ConfigAPI) -> None:
    tagged = await api.subscription(
        type="async", eventType="test.event", functionId="test", metadata={"service": "s"}
    )
    await api.subscription(type="async", eventType="test.event", functionId="other")

    one = await api.http.get(api.url("subscriptions", tagged["subscriptionId"]))
    filtered = await api.http.get(api.url("subscriptions"), params={"metadata.service": "s"})
    everything = await api.http.get(api.url("subscriptions") + "?")

    assert one.json() == tagged
    assert filtered.json() == {"subscriptions": [tagged]}
    ids = [s["subscriptionId"] for s in everything.json()["subscriptions"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 2


async def test_get_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.get(api.url("subscriptions", "nope"))

    assert response.status_code == 404
    assert errors(response) == 'Subscription "nope" not found.'


async def test_update_changes_only_metadata(api: ConfigAPI) -> None:
    created = await api.subscription(type="async", eventType="test.event", functionId="test")

    response = await api.http.put(
        api.url("subscriptions", ASYNC_ID),
        json={
            "type": "async",
            "eventType": "test.event",
            "functionId": "test",
            "metadata": {"k": "v"},
        },
    )

    assert response.status_code == 200
    assert response.json() == {**created, "metadata": {"k": "v"}}
    assert (await api.http.get(api.url("subscriptions", ASYNC_ID))).json() == response.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "sync"}, "Type"),
        ({"eventType": "http.request"}, "EventType"),
        ({"functionId": "other"}, "FunctionID"),
        ({"path": "/elsewhere"}, "Path"),
        ({"method": "PUT"}, "Method"),
    ],
)
async def test_update_of_an_identifying_field_is_400(
    api: ConfigAPI, change: dict[str, str], field: str
) -> None:
    await api.subscription(type="async", eventType="test.event", functionId="test")
    body = {"type": "async", "eventType": "test.event", "functionId": "test", **change}

    response = await api.http.put(api.url("subscriptions", ASYNC_ID), json=body)

    assert response.status_code == 400
    assert (
        errors(response) == f"Invalid update. '{field}' of existing subscription cannot be updated."
    )


async def test_update_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.put(
        api.url("subscriptions", "nope"),
        json={"type": "async", "eventType": "test.event", "functionId": "test"},
    )

    assert response.status_code == 404
    assert errors(response) == 'Subscription "nope" not found.'


async def test_delete(api: ConfigAPI) -> None:
    await api.subscription(type="async", eventType="test.event", functionId="test")

    response = await api.http.delete(api.url("subscriptions", ASYNC_ID))

    assert response.status_code == 204
    assert response.content == b""
    assert (await api.http.delete(api.url("subscriptions", ASYNC_ID))).status_code == 404


async def test_delete_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.delete(api.url("subscriptions", "nope"))

    assert response.status_code == 404
    assert errors(response) == 'Subscription "nope" not found.'


def sync_route(path: str) -> dict[str, str]:
    return {"type": "sync", "eventType": "http.request", "functionId": "test", "path": path}


async def in_space(api: ConfigAPI, space: str) -> None:
    await api.event_type("http.request", space=space)
    await api.function("test", space=space)


@pytest.mark.parametrize(
    ("first", "second", "conflict"),
    [
        # acme sorts before ops: the routing table would have dropped the operator's route
        (
            ("ops", "/:tenant/hook"),
            ("acme", "/acme/hook"),
            'parameter with different name ("tenant") already defined: for route: /acme/hook',
        ),
        (
            ("acme", "/acme/hook"),
            ("ops", "/:tenant/hook"),
            "static route already defined for route: /:tenant/hook",
        ),
        (
            ("acme", "/:tenant/hook"),
            ("zzz", "/zzz/hook"),
            'parameter with different name ("tenant") already defined: for route: /zzz/hook',
        ),
    ],
)
async def test_sync_path_conflict_with_another_space_is_400(
    api: ConfigAPI, first: tuple[str, str], second: tuple[str, str], conflict: str
) -> None:
    # Routing holds every space's sync routes in one tree: a clash would silently knock
    # one of them out for everybody.
    for space in ("ops", "acme", "zzz"):
        await in_space(api, space)
    await api.subscription(space=first[0], **sync_route(first[1]))

    response = await api.post("subscriptions", sync_route(second[1]), space=second[0])

    assert response.status_code == 400
    assert errors(response) == f"Subscription path conflict: {conflict}"


async def test_clashing_sync_routes_created_at_once_in_two_spaces_admit_one(
    api: ConfigAPI,
) -> None:
    await in_space(api, "ops")
    await in_space(api, "acme")

    responses = await asyncio.gather(
        api.post("subscriptions", sync_route("/:tenant/hook"), space="ops"),
        api.post("subscriptions", sync_route("/acme/hook"), space="acme"),
    )

    assert sorted(r.status_code for r in responses) == [201, 400]


@pytest.mark.parametrize("path", ["/users/:id/:id", "/files/:name/*name"])
async def test_a_sync_path_naming_a_parameter_twice_is_refused(api, path):
    # Only the last value would reach the function, under the one name.
    response = await api.post(
        "subscriptions",
        {"type": "sync", "eventType": "http.request", "functionId": "test", "path": path},
    )

    assert response.status_code == 400
    name = path.rsplit("/", 1)[1][1:]
    assert errors(response) == f"Subscription path {path} names parameter {name!r} twice."
