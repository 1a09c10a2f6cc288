"""The Events API against odd client input: a clear 4xx or normal routing, never a crash."""

from __future__ import annotations

import json

import pytest

from tests.support.inprocess import in_process_gateway
from tests.support.receiver import Receiver

STRUCTURED = {"content-type": "application/cloudevents+json"}
CE10 = {"specversion": "1.0", "id": "e-1", "source": "/s", "type": "user.created"}
CE01 = {
    "eventType": "user.created",
    "cloudEventsVersion": "0.1",
    "source": "/s",
    "eventID": "e-1",
    "data": {"a": 1},
}
AUTHORIZATION = {"principalId": "p-1"}


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (
            "application/cloudevents+json",
            b'{"specversion":"1.0","id":"e-1","source":"/s","type":"t","ext":1e400}',
            "CloudEvent attribute 'ext' holds a number out of range",
        ),
        (
            "application/cloudevents-batch+json",
            b'[{"specversion":"1.0","id":"e-1","source":"/s","type":"t","ext":1e400}]',
            "event [0]: CloudEvent attribute 'ext' holds a number out of range",
        ),
        (
            "application/cloudevents+json",
            b'{"eventType":"t","cloudEventsVersion":"0.1","source":"/s","eventID":"e-1",'
            b'"extensions":{"a":1e400}}',
            "CloudEvent attribute 'extensions' holds a number out of range",
        ),
    ],
)
async def test_number_out_of_range_is_a_400(content_type, body, message):
    async with in_process_gateway() as gw:
        response = await gw.events.post(
            "/acme", content=body, headers={"content-type": content_type}
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith(message)


async def _authorized_type(gw, receiver: Receiver) -> None:
    receiver.reply_json("/authz", {"authorization": AUTHORIZATION})
    await gw.http_function("authz", receiver.url("/authz"))
    await gw.http_function("fn", receiver.url("/fn"))
    await gw.event_type("user.created", authorizerId="authz")


async def test_sync_route_replaces_a_client_eventgateway_extension_that_is_no_object(
    receiver: Receiver,
):
    receiver.reply_json("/fn", {"statusCode": 200, "body": "ok"})
    async with in_process_gateway() as gw:
        await _authorized_type(gw, receiver)
        await gw.subscribe(type="sync", eventType="user.created", functionId="fn", path="/acme")
        event = {**CE01, "extensions": {"eventgateway": "spoofed", "tenant": "t"}}
        response = await gw.events.post("/acme", content=json.dumps(event), headers=STRUCTURED)
    assert (response.status_code, response.text) == (200, "ok")
    [call] = receiver.calls_to("/fn")
    assert call.json()["extensions"] == {
        "eventgateway": {"authorization": AUTHORIZATION},
        "tenant": "t",
    }


async def test_async_delivery_replaces_a_client_eventgateway_extension_that_is_no_object(
    receiver: Receiver,
):
    async with in_process_gateway() as gw:
        await _authorized_type(gw, receiver)
        await gw.subscribe(type="async", eventType="user.created", functionId="fn", path="/acme")
        event = {**CE01, "extensions": {"eventgateway": [1, 2]}}
        response = await gw.events.post("/acme", content=json.dumps(event), headers=STRUCTURED)
        assert response.status_code == 202
        [call] = await receiver.wait_for(1, "/fn")  # the old code retried it forever
    assert call.json()["extensions"] == {"eventgateway": {"authorization": AUTHORIZATION}}


@pytest.mark.parametrize(
    "content_type", ["Application/CloudEvents-Batch+JSON", "APPLICATION/CLOUDEVENTS-BATCH+JSON"]
)
async def test_batch_in_any_case_goes_to_async_subscriptions_only(
    receiver: Receiver, content_type: str
):
    receiver.reply_json("/sync", {"statusCode": 200, "body": "from sync"})
    async with in_process_gateway() as gw:
        await gw.event_type("user.created")
        await gw.http_function("sync", receiver.url("/sync"))
        await gw.http_function("async", receiver.url("/async"))
        await gw.subscribe(type="sync", eventType="user.created", functionId="sync", path="/acme")
        await gw.subscribe(type="async", eventType="user.created", functionId="async", path="/acme")
        response = await gw.events.post(
            "/acme", content=json.dumps([CE10]), headers={"content-type": content_type}
        )
        assert (response.status_code, response.content) == (202, b"")
        await receiver.wait_for(1, "/async")
    # A sync route answers before the response, so had it run, its call would be here.
    assert receiver.calls_to("/sync") == []
