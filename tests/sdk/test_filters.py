"""The SDK's ``subscribe(filter=…)`` against a real gateway (uvicorn on free ports)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventgateway import AsyncEventGateway, GatewayError
from tests.sdk.test_client import USER, Served, http_subscriber, serve_gateway
from tests.support.receiver import Receiver


@pytest.fixture
async def client() -> AsyncIterator[AsyncEventGateway]:
    served: Served
    async with serve_gateway() as served, served.client() as sdk:
        yield sdk


async def test_subscribe_with_a_filter_delivers_only_matching_events(client, receiver: Receiver):
    pattern = {"data": {"email": [{"suffix": "@example.com"}]}}
    subscription = await http_subscriber(client, receiver, filter=pattern)
    assert subscription["filter"] == pattern
    assert (await client.get_subscription(subscription["subscriptionId"]))["filter"] == pattern

    await client.emit(event="user.created", data={**USER, "email": "bob@elsewhere.test"}, id="u-1")
    await client.emit(event="user.created", data=USER, id="u-2")

    [call] = await receiver.wait_for(1, "/crm")
    assert call.json()["id"] == "u-2"
    with pytest.raises(GatewayError) as missing:  # no delivery was ever planned for u-1
        await client.get_event("u-1")
    assert missing.value.status == 404


async def test_subscribe_refuses_a_filter_on_a_sync_subscription(client, receiver: Receiver):
    with pytest.raises(GatewayError) as refused:
        await http_subscriber(
            client, receiver, type="sync", path="/acme-crm/hi", filter={"source": ["/x"]}
        )

    assert refused.value.status == 400
    assert "filter is only for async subscriptions" in str(refused.value)
