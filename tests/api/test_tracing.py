"""W3C Trace Context across the gateway: the emit's traceparent reaches every function."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE = {"traceparent": PARENT, "tracestate": "congo=t61rcWkgMzE"}
STRUCTURED = {"content-type": "application/cloudevents+json"}
EVENT = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "user.created"}


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


async def fan_out(gw: InProcess, receiver: Receiver, names: list[str], **function: Any) -> None:
    await gw.event_type("user.created")
    for name in names:
        await gw.create(
            "functions",
            {
                "functionId": name,
                "type": "http",
                "provider": {"url": receiver.url(f"/{name}")},
                **function,
            },
        )
        await gw.subscribe(type="async", eventType="user.created", functionId=name, path="/acme")


async def test_every_delivery_carries_the_emits_trace_context(gw: InProcess, receiver: Receiver):
    await fan_out(gw, receiver, ["crm", "mail"])
    response = await gw.events.post("/acme", json=EVENT, headers={**STRUCTURED, **TRACE})
    assert response.status_code == 202
    calls = await receiver.wait_for(2)
    for call in calls:
        assert call.headers["traceparent"] == PARENT
        assert call.headers["tracestate"] == "congo=t61rcWkgMzE"
        assert call.json()["traceparent"] == PARENT  # the extension, stored with the event
    stored = (await gw.config.get("/v1/spaces/acme/events/e-1")).json()
    assert stored["event"]["traceparent"] == PARENT


async def test_without_a_trace_no_trace_header_is_sent(gw: InProcess, receiver: Receiver):
    await fan_out(gw, receiver, ["crm"])
    assert (await gw.events.post("/acme", json=EVENT, headers=STRUCTURED)).status_code == 202
    (call,) = await receiver.wait_for(1)
    assert "traceparent" not in call.headers
    assert "traceparent" not in call.json()


async def test_binary_mode_deliveries_carry_both_the_header_and_ce_traceparent(
    gw: InProcess, receiver: Receiver
):
    await fan_out(gw, receiver, ["crm"], contentMode="binary")
    assert (await gw.events.post("/acme", json=EVENT, headers={**STRUCTURED, **TRACE})).is_success
    (call,) = await receiver.wait_for(1)
    assert call.headers["traceparent"] == PARENT
    assert call.headers["ce-traceparent"] == PARENT


async def test_a_sync_function_gets_the_callers_trace(receiver: Receiver):
    receiver.reply_json("/get-user", {"statusCode": 200, "body": "ok"})
    async with in_process_gateway() as gw:
        await gw.http_function("getUser", receiver.url("/get-user"))
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="getUser", path="/acme/users/:id"
        )
        response = await gw.events.post("/acme/users/42", headers=TRACE)
    assert response.status_code == 200
    (call,) = receiver.calls
    assert call.headers["traceparent"] == PARENT
    assert call.json()["data"]["headers"]["Traceparent"] == PARENT  # the request, as before


async def test_an_authorizer_is_called_within_the_trace(receiver: Receiver):
    receiver.reply_json("/allow", {"authorization": {"principalId": "u1"}})
    async with in_process_gateway() as gw:
        await gw.http_function("allow", receiver.url("/allow"))
        await gw.http_function("crm", receiver.url("/crm"))
        await gw.event_type("user.created", authorizerId="allow")
        await gw.subscribe(type="async", eventType="user.created", functionId="crm", path="/acme")
        response = await gw.events.post("/acme", json=EVENT, headers={**STRUCTURED, **TRACE})
        assert response.status_code == 202
        await receiver.wait_for(1, "/crm")
    (authorizer,) = receiver.calls_to("/allow")
    assert authorizer.headers["traceparent"] == PARENT
    assert authorizer.headers["tracestate"] == "congo=t61rcWkgMzE"
    assert receiver.calls_to("/crm")[0].headers["traceparent"] == PARENT


@pytest.mark.e2e
async def test_the_delivery_worker_sends_the_trace_on(tmp_path: pathlib.Path, receiver: Receiver):
    gateway = await asyncio.to_thread(GatewayProcess(tmp_path / "data").start)
    try:
        async with (
            httpx.AsyncClient(base_url=gateway.config_url) as config,
            httpx.AsyncClient(base_url=gateway.events_url) as events,
        ):
            function = {"functionId": "f", "type": "http", "provider": {"url": receiver.url("/f")}}
            subscription = {"type": "async", "eventType": "user.created", "functionId": "f"}
            for path, body in [
                ("functions", function),
                ("eventtypes", {"name": "user.created"}),
                ("subscriptions", {**subscription, "path": "/work"}),
            ]:
                assert (await config.post(f"/v1/spaces/work/{path}", json=body)).status_code == 201
            response = await events.post("/work", json=EVENT, headers={**STRUCTURED, **TRACE})
            assert response.status_code == 202
        (call,) = await receiver.wait_for(1, timeout_s=15)
    finally:
        assert await asyncio.to_thread(gateway.stop) == 0
    assert call.headers["traceparent"] == PARENT
    assert call.headers["tracestate"] == "congo=t61rcWkgMzE"
