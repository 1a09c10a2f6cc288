"""``invoke``: the request the SDK builds, and both clients against a served gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from eventgateway import AsyncEventGateway, EventGateway, GatewayError
from tests.sdk.test_client import SPACE, Served, serve_gateway
from tests.sdk.test_wire import CONFIG, calls
from tests.support.receiver import Receiver


@pytest.mark.parametrize(
    ("data", "event", "sent"),
    [
        (None, None, {}),
        ({"username": "ada"}, None, {"data": {"username": "ada"}}),
        ([1, 2], "user.created", {"event": "user.created", "data": [1, 2]}),
        (0, None, {"data": 0}),
    ],
)
def test_invoke_posts_the_event_and_data_to_the_functions_invoke_path(data, event, sent):
    request = calls(api_key="k").invoke("a/b", data, event=event, wait_s=None, connect_s=10).request

    assert (request.method, request.url) == ("POST", CONFIG + "/functions/a%2Fb/invoke")
    assert json.loads(request.content or b"") == sent
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer k"
    # An invocation is not idempotent: only what never reached the gateway is sent again.
    assert request.retry == "unsent"
    assert "timeout" not in request.extensions


def test_a_longer_wait_extends_only_the_read_timeout():
    request = calls().invoke("f", None, event=None, wait_s=900, connect_s=3).request

    assert request.extensions["timeout"] == {"connect": 3, "read": 900, "write": 3, "pool": 3}


def test_both_clients_document_invoke_alike():
    assert EventGateway.invoke.__doc__ == AsyncEventGateway.invoke.__doc__
    assert "versionadded" in (AsyncEventGateway.invoke.__doc__ or "")


async def test_both_clients_invoke_an_http_function_and_raise_for_an_unknown_one(
    receiver: Receiver,
):
    receiver.reply_json("/crm", {"saved": True})
    async with serve_gateway() as served:
        async with served.client() as client:
            await client.create_function("crm", "http", {"url": receiver.url("/crm")})
            answer = await client.invoke("crm", {"username": "ada"}, event="user.created")
            with pytest.raises(GatewayError) as missing:
                await client.invoke("nope")
        blocking = await asyncio.to_thread(_invoke_blocking, served)

    assert (answer["ok"], answer["status"], answer["result"]) == (True, 200, {"saved": True})
    assert answer["eventType"] == "user.created"
    first, second = receiver.calls_to("/crm")
    assert first.json()["data"] == {"username": "ada"}
    assert (missing.value.status, missing.value.message) == (404, 'Function "nope" not found.')
    assert blocking["ok"] is True
    assert second.json()["data"] == [1]
    assert second.json()["type"] == "invoke"


def _invoke_blocking(served: Served) -> dict[str, Any]:
    with EventGateway(served.url, config_url=served.config_url, space=SPACE) as gateway:
        return gateway.invoke("crm", [1], wait_s=30)
