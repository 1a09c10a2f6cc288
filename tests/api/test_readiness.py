"""``GET /v1/ready`` in process: ready, then not once the gateway drains."""

from __future__ import annotations

from eventgateway.api.readiness import readiness_endpoint
from tests.support.inprocess import in_process_gateway


async def test_ready_until_the_gateway_drains():
    async with in_process_gateway() as gw:
        ready = await gw.config.get("/v1/ready")
        gw.gateway.begin_drain()
        draining = await gw.config.get("/v1/ready")

    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "reasons": []}
    assert ready.headers["cache-control"] == "no-store"
    assert draining.status_code == 503
    assert draining.json() == {"ready": False, "reasons": ["the gateway is shutting down"]}


async def test_every_failing_check_is_named_in_order():
    endpoint = readiness_endpoint([lambda: "first", lambda: None, lambda: "third"])

    response = await endpoint(None)  # type: ignore[arg-type]

    assert response.status_code == 503
    assert response.body == b'{"ready":false,"reasons":["first","third"]}\n'
