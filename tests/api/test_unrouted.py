"""The log's hint about events that reach no subscription on their path but have
subscriptions on others (``api/unrouted.py``)."""

from __future__ import annotations

import logging

import pytest

from eventgateway.api.unrouted import MAX_HINTS
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver

STRUCTURED = {"content-type": "application/cloudevents+json"}
LOGGER = "eventgateway.api.unrouted"


def event(event_type: str = "user.created", event_id: str = "1") -> dict[str, str]:
    return {"specversion": "1.0", "id": event_id, "source": "/s", "type": event_type}


def hints(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


async def emit(gw: InProcess, path: str, body: dict[str, str], method: str = "POST") -> None:
    response = await gw.events.request(method, path, json=body, headers=STRUCTURED)
    assert response.status_code == 202  # accepted, as the original did: only the log says


async def subscribe_on_acme(gw: InProcess, receiver: Receiver) -> None:
    await gw.http_function("crm", receiver.url("/crm"))
    await gw.event_type("user.created")
    await gw.subscribe(type="async", eventType="user.created", functionId="crm", path="/acme/")


async def test_an_event_on_a_path_without_its_subscriptions_is_hinted_at_once(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    async with in_process_gateway() as gw:
        await subscribe_on_acme(gw, receiver)
        await emit(gw, "/", event())  # the Node SDK's url without the space
        await emit(gw, "/", event(event_id="2"))  # said once
        await emit(gw, "/acme/", event(event_id="3"))  # routed: nothing to say
        await emit(gw, "/", event("order.placed"))  # nobody subscribes to it anywhere
        await emit(gw, "/nowhere", {**event("http.request")})
        said = hints(caplog)
        await gw.event_type("user.deleted")  # a new configuration: said again
        await emit(gw, "/", event(event_id="4"))

    assert said == [
        "POST /: event type 'user.created' reached no subscription on this path; its "
        "subscriptions are on /acme/. Emit to one of those (with the Node SDK: url "
        "'http://HOST:PORT/acme'). Said once per path and type until the configuration "
        "changes."
    ]
    assert len(hints(caplog)) == 2


async def test_hints_per_configuration_are_bounded(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    async with in_process_gateway() as gw:
        await subscribe_on_acme(gw, receiver)
        for n in range(MAX_HINTS + 5):
            await emit(gw, f"/probe{n}", event(event_id=str(n)))

    assert len(hints(caplog)) == MAX_HINTS


async def test_events_nobody_subscribes_to_use_up_no_hint(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    async with in_process_gateway() as gw:
        await subscribe_on_acme(gw, receiver)
        for n in range(MAX_HINTS + 5):  # a producer of types nobody listens to yet
            await emit(gw, f"/q{n}", event(f"nosuch.t{n}", str(n)))
        await emit(gw, "/", event(event_id="miss"))

    [hint] = hints(caplog)
    assert hint.startswith("POST /: event type 'user.created' reached no subscription")
