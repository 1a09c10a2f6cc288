"""Subscription filters end to end, in one event loop: each subscription gets only the
events its filter matches. Runs on SQLite files (the default backend) and on memory.

Deliveries are planned before the 202, so an event's delivery view
(``GET …/events/<id>``) lists exactly the subscriptions it will ever reach: the tests wait
for the receivers, then check that view; nothing waits for something not to happen.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.api import fanout
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver

STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


async def subscribe(
    gw: InProcess, receiver: Receiver, name: str, event_type: str = "user.created", **body: Any
) -> str:
    await gw.http_function(name, receiver.url(f"/{name}"))
    created = await gw.subscribe(
        type="async", eventType=event_type, functionId=name, path="/acme", **body
    )
    return str(created["subscriptionId"])


async def emit(gw: InProcess, n: int, plan: str) -> None:
    event = {
        "specversion": "1.0",
        "id": f"e-{n}",
        "source": "/users",
        "type": "user.created",
        "data": {"plan": plan, "seats": n},
    }
    response = await gw.events.post("/acme", json=event, headers=STRUCTURED)
    assert response.status_code == 202, response.text


async def reached(gw: InProcess, event_id: str) -> set[str]:
    view = await gw.config.get(f"/v1/spaces/acme/events/{event_id}")
    assert view.status_code == 200, view.text
    return {delivery["subscriptionId"] for delivery in view.json()["deliveries"]}


async def filtered_total(gw: InProcess) -> str:
    metrics = (await gw.config.get("/v1/metrics")).text
    return next(
        line.rsplit(" ", 1)[1]
        for line in metrics.splitlines()
        if line.startswith('eventgateway_events_filtered_total{space="acme"}')
    )


async def test_two_filters_on_one_route_each_get_only_their_events(gw, receiver):
    await gw.event_type("user.created")
    pro = await subscribe(gw, receiver, "pro", filter={"data": {"plan": ["pro"]}})
    small = await subscribe(
        gw, receiver, "small", filter={"data": {"seats": [{"numeric": ["<=", 2]}]}}
    )
    everyone = await subscribe(gw, receiver, "everyone")

    for n, plan in enumerate(["pro", "free", "team", "pro"], start=1):
        await emit(gw, n, plan)

    await receiver.wait_for(4, "/everyone")
    await receiver.wait_for(2, "/pro")
    await receiver.wait_for(2, "/small")
    assert sorted(c.json()["id"] for c in receiver.calls_to("/pro")) == ["e-1", "e-4"]
    assert sorted(c.json()["id"] for c in receiver.calls_to("/small")) == ["e-1", "e-2"]
    assert await reached(gw, "e-1") == {pro, small, everyone}
    assert await reached(gw, "e-2") == {small, everyone}
    assert await reached(gw, "e-3") == {everyone}
    assert await reached(gw, "e-4") == {pro, everyone}
    assert await filtered_total(gw) == "4.0"  # e-2: pro; e-3: pro, small; e-4: small


async def test_a_filter_change_applies_to_the_next_event(gw, receiver):
    await gw.event_type("user.created")
    sub_id = await subscribe(gw, receiver, "pro", filter={"data": {"plan": ["pro"]}})
    everyone = await subscribe(gw, receiver, "everyone")

    await emit(gw, 1, "free")
    changed = await gw.config.put(
        f"/v1/spaces/acme/subscriptions/{sub_id}",
        json={
            "type": "async",
            "eventType": "user.created",
            "functionId": "pro",
            "path": "/acme",
            "filter": {"data": {"plan": ["free"]}},
        },
    )
    assert changed.status_code == 200, changed.text
    await emit(gw, 2, "free")

    await receiver.wait_for(1, "/pro")
    await receiver.wait_for(2, "/everyone")
    assert await reached(gw, "e-1") == {everyone}
    assert await reached(gw, "e-2") == {sub_id, everyone}
    assert [c.json()["id"] for c in receiver.calls_to("/pro")] == ["e-2"]


async def test_http_request_events_filter_on_the_request(gw, receiver):
    await gw.event_type("http.request")
    tenant_only = await subscribe(
        gw,
        receiver,
        "acme-tenant",
        event_type="http.request",
        filter={"data": {"method": ["POST"], "headers": {"X-Tenant": ["acme"]}}},
    )
    everyone = await subscribe(gw, receiver, "all-requests", event_type="http.request")

    for tenant in ("other", "acme"):
        response = await gw.events.post("/acme", json={"n": 1}, headers={"x-tenant": tenant})
        assert response.status_code == 202

    calls = await receiver.wait_for(2, "/all-requests")
    [call] = await receiver.wait_for(1, "/acme-tenant")
    assert call.json()["data"]["headers"]["X-Tenant"] == "acme"
    by_tenant = {c.json()["data"]["headers"]["X-Tenant"]: c.json()["eventID"] for c in calls}
    assert await reached(gw, by_tenant["acme"]) == {tenant_only, everyone}
    assert await reached(gw, by_tenant["other"]) == {everyone}


async def test_0_1_events_filter_with_the_1_0_names(gw, receiver):
    await gw.event_type("user.created")
    eu = await subscribe(gw, receiver, "eu", filter={"region": ["eu"], "id": [{"prefix": "v01-"}]})
    everyone = await subscribe(gw, receiver, "everyone")

    for n, region in enumerate(["us", "eu"]):
        event = {
            "cloudEventsVersion": "0.1",
            "eventType": "user.created",
            "eventID": f"v01-{n}",
            "source": "/legacy",
            "extensions": {"region": region},
            "data": {},
        }
        response = await gw.events.post("/acme", json=event, headers=STRUCTURED)
        assert response.status_code == 202

    await receiver.wait_for(2, "/everyone")
    [call] = await receiver.wait_for(1, "/eu")
    assert call.json()["eventID"] == "v01-1"
    assert await reached(gw, "v01-0") == {everyone}
    assert await reached(gw, "v01-1") == {eu, everyone}


async def test_an_event_that_overruns_the_filter_budget_skips_only_filtered_subscriptions(
    gw, receiver, caplog, monkeypatch
):
    monkeypatch.setattr(fanout, "_last_warning_s", [float("-inf")])  # one warning a minute
    await gw.event_type("user.created")
    pattern = {"data": {"tags": [{"prefix": f"p{i}"} for i in range(100)]}}
    hungry = await subscribe(gw, receiver, "hungry", filter=pattern)
    everyone = await subscribe(gw, receiver, "everyone")
    tags = ["a"] * 200_000 + ["p7-matches"]  # 20 million checks: past the budget
    event = {"specversion": "1.0", "id": "big", "source": "/s", "type": "user.created"}

    response = await gw.events.post(
        "/acme", json={**event, "data": {"tags": tags}}, headers=STRUCTURED
    )

    assert response.status_code == 202
    await receiver.wait_for(1, "/everyone")
    assert await reached(gw, "big") == {everyone}
    assert hungry not in await reached(gw, "big")
    assert await filtered_total(gw) == "1.0"
    assert "ran past their work budget" in caplog.text
