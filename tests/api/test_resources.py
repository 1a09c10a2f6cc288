"""ConfigResources used directly (deploy and the test kit call it in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from eventgateway.api.resources import ConfigResources, matches_filters
from eventgateway.errors import ConflictError, NotFoundError, ValidationError
from eventgateway.model.entities import EventType, Subscription
from eventgateway.store.memory import MemoryStore


@pytest.fixture
async def resources() -> AsyncIterator[ConfigResources]:
    store = MemoryStore()
    await store.open()
    yield ConfigResources(store)
    await store.close()


async def test_mapping_bodies_are_accepted(resources: ConfigResources) -> None:
    created = await resources.create_event_type("acme", {"name": "user.created"})

    assert created == EventType(space="acme", name="user.created")
    assert await resources.get_event_type("acme", "user.created") == created


async def test_concurrent_sync_subscribers_of_one_route_get_one_409(
    resources: ConfigResources,
) -> None:
    await resources.create_event_type("acme", {"name": "http.request"})
    for function_id in ("a", "b"):
        await resources.create_function(
            "acme", {"functionId": function_id, "type": "http", "provider": {"url": "http://x"}}
        )

    results = await asyncio.gather(
        *(
            resources.create_subscription(
                "acme",
                {"type": "sync", "eventType": "http.request", "functionId": f, "path": "/p"},
            )
            for f in ("a", "b")
        ),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["ConflictError", "Subscription"]
    assert len(await resources.list_subscriptions("acme")) == 1


async def test_errors_carry_status_codes(resources: ConfigResources) -> None:
    with pytest.raises(NotFoundError) as missing:
        await resources.get_function("acme", "nope")
    with pytest.raises(ValidationError) as invalid:
        await resources.create_cors("acme", {"method": "get", "path": "/x"})
    await resources.create_cors("acme", {"method": "GET", "path": "/x"})
    with pytest.raises(ConflictError) as duplicate:
        await resources.create_cors("acme", {"method": "GET", "path": "/x"})

    assert (missing.value.status_code, invalid.value.status_code) == (404, 400)
    assert duplicate.value.status_code == 409


async def test_update_subscription_keeps_the_url_id(resources: ConfigResources) -> None:
    await resources.create_event_type("acme", {"name": "e"})
    await resources.create_function(
        "acme", {"functionId": "f", "type": "http", "provider": {"url": "http://x"}}
    )
    created = await resources.create_subscription(
        "acme", {"type": "sync", "eventType": "e", "functionId": "f", "path": "/p"}
    )

    updated = await resources.update_subscription(
        "acme",
        created.subscription_id,
        {"type": "sync", "eventType": "e", "functionId": "f", "path": "/p", "metadata": {"a": "b"}},
    )

    assert updated == Subscription(
        space="acme",
        subscription_id=created.subscription_id,
        type="sync",
        event_type="e",
        function_id="f",
        path="/p",
        method="POST",
        metadata={"a": "b"},
    )


@pytest.mark.parametrize(
    ("metadata", "filters", "expected"),
    [
        (None, {}, True),
        (None, {"a": "1"}, False),
        ({"a": "1"}, {"a": "1"}, True),
        ({"a": "1"}, {"a": "2"}, False),
        ({"a": "1", "b": "2"}, {"a": "1", "b": "2"}, True),
        ({"a": "1"}, {"a": "1", "b": "2"}, False),
        ({"a": ""}, {"a": ""}, True),
    ],
)
def test_matches_filters(
    metadata: dict[str, str] | None, filters: dict[str, str], expected: bool
) -> None:
    assert matches_filters(metadata, filters) is expected
