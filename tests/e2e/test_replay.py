"""Replay end to end: a real `eg serve` (SQLite, the default delivery worker) delivers an
event once; ``POST …/events/replay`` delivers it to the receiver a second time, the same
CloudEvent, and the delivery log shows both deliveries."""

from __future__ import annotations

import asyncio
import pathlib

import httpx
import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

EVENT = {
    "specversion": "1.0",
    "id": "order-42",
    "source": "/shop",
    "type": "order.placed",
    "data": {"total": 42},
}


async def test_a_delivered_event_replayed_reaches_the_function_again_with_the_same_id(
    tmp_path: pathlib.Path, receiver: Receiver
) -> None:
    gateway = await asyncio.to_thread(GatewayProcess(tmp_path / "data").start)
    try:
        async with (
            httpx.AsyncClient(base_url=f"{gateway.config_url}/v1/spaces/shop") as config,
            httpx.AsyncClient(base_url=gateway.events_url) as events,
        ):
            function = {"functionId": "f", "type": "http", "provider": {"url": receiver.url("/f")}}
            subscription = {"type": "async", "eventType": "order.placed", "functionId": "f"}
            for resource, body in [
                ("functions", function),
                ("eventtypes", {"name": "order.placed"}),
                ("subscriptions", {**subscription, "path": "/shop"}),
            ]:
                assert (await config.post(f"/{resource}", json=body)).status_code == 201
            structured = {"content-type": "application/cloudevents+json"}
            accepted = await events.post("/shop", json=EVENT, headers=structured)
            assert accepted.status_code == 202
            [first] = await receiver.wait_for(1, "/f")

            replayed = await config.post("/events/replay", json={"ids": ["order-42"]})

            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["replayed"] == 1
            calls = await receiver.wait_for(2, "/f")
            assert [call.json()["id"] for call in calls] == ["order-42", "order-42"]
            assert calls[1].json() == first.json()
            deadline = asyncio.get_running_loop().time() + 10
            while True:  # the settle follows the receiver's answer: nothing to await
                view = (await config.get("/events/order-42")).json()
                if view["state"] == "delivered" and len(view["deliveries"]) == 2:
                    break
                assert asyncio.get_running_loop().time() < deadline, view
                await asyncio.sleep(0.02)
            original, replay = view["deliveries"]
            assert replay["replayOf"] == original["deliveryId"]
    finally:
        code = await asyncio.to_thread(gateway.stop)
    assert code == 0
