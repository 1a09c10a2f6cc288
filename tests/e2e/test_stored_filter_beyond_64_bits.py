"""A config store holding a filter the gateway no longer accepts (an integer beyond 64 bits,
stored before those were refused) does not stop `eg serve`: with its delivery worker
(``--dispatch worker``, whose routing frames carry 64-bit integers only) it becomes ready,
routes everything else, takes config writes, and an update puts the subscription right."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import httpx
import pytest

from eventgateway.model.entities import EventType, Function, encode_entity
from eventgateway.store.sqlite import SqliteStore
from tests.e2e.test_readiness import until_status
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

SUBSCRIPTION = {"type": "async", "eventType": "user.created", "path": "/acme/"}
BIG = 2**64 + 1
BIG_RECORD = (
    b'{"space":"acme","subscriptionId":"big","type":"async","eventType":"user.created",'
    b'"functionId":"big","path":"/acme/","method":"POST",'
    b'"filter":{"data":{"n":[{"numeric":[">",18446744073709551616]}]}}}'
)


async def store_with_the_old_filter(data_dir: pathlib.Path, receiver: Receiver) -> None:
    """The gateway's config store, written straight, as a gateway before the fix left it."""
    store = SqliteStore(data_dir / "gateway.db")
    await store.open()
    try:
        function = Function("acme", "big", "http", {"url": receiver.url("/big")})
        await store.create(
            "eventtypes", "acme", "user.created", encode_entity(EventType("acme", "user.created"))
        )
        await store.create("functions", "acme", "big", encode_entity(function))
        await store.create("subscriptions", "acme", "big", BIG_RECORD)
    finally:
        await store.close()


async def emit(gateway: GatewayProcess, event_id: str, data: Any) -> None:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/t",
        "type": "user.created",
        "data": data,
    }
    async with httpx.AsyncClient(base_url=gateway.events_url) as events:
        response = await events.post(
            "/acme/", json=event, headers={"content-type": "application/cloudevents+json"}
        )
    assert response.status_code == 202, response.text


async def test_a_stored_filter_beyond_64_bits_does_not_stop_the_gateway(
    tmp_path: pathlib.Path, receiver: Receiver
):
    await store_with_the_old_filter(tmp_path / "data", receiver)
    gateway = GatewayProcess(tmp_path / "data", "--dispatch", "worker")
    await asyncio.to_thread(gateway.start)
    try:
        assert await until_status(gateway, 200) == {"ready": True, "reasons": []}
        async with httpx.AsyncClient(base_url=gateway.config_url) as config:
            ok = {"functionId": "ok", "type": "http", "provider": {"url": receiver.url("/ok")}}
            for resource, body in [
                ("functions", ok),
                ("subscriptions", {**SUBSCRIPTION, "functionId": "ok"}),
            ]:
                response = await config.post(f"/v1/spaces/acme/{resource}", json=body)
                assert response.status_code == 201, response.text
            other = await config.post("/v1/spaces/other/eventtypes", json={"name": "e"})
            assert other.status_code == 201, other.text

            # The same route: the other subscription gets every event, the kept-out one none.
            await emit(gateway, "e1", {"n": BIG})
            await emit(gateway, "e2", {"n": BIG})
            await receiver.wait_for(2, "/ok", timeout_s=20)
            assert receiver.calls_to("/big") == []
            assert "Async subscription big in space acme skipped" in gateway.log()

            # Still listed, and an update with a filter it may hold puts it back in routing.
            listed = (await config.get("/v1/spaces/acme/subscriptions")).json()["subscriptions"]
            assert "big" in {s["subscriptionId"] for s in listed}
            fixed = {
                **SUBSCRIPTION,
                "functionId": "big",
                "filter": {"data": {"n": [{"numeric": [">", 1.8e19]}]}},
            }
            response = await config.put("/v1/spaces/acme/subscriptions/big", json=fixed)
            assert response.status_code == 200, response.text
        await emit(gateway, "e3", {"n": BIG})
        [delivered] = await receiver.wait_for(1, "/big", timeout_s=20)
        assert delivered.json()["id"] == "e3"
    finally:
        code = await asyncio.to_thread(gateway.stop)
    assert code == 0
