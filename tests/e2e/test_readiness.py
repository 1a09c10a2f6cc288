"""``GET /v1/ready`` on a real `eg serve`: not ready while its delivery worker or NATS is down."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import time
import uuid

import httpx
import pytest

from tests.e2e.test_worker import wait_for_child
from tests.support.nats_server import NatsServer, require_nats_server, wait_jetstream
from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

STEP_TIMEOUT_S = 20.0


async def readiness(gateway: GatewayProcess) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{gateway.config_url}/v1/ready")
    return response.status_code, response.json()


async def until_status(gateway: GatewayProcess, status: int) -> dict[str, object]:
    """Poll ``/v1/ready`` until it answers ``status``; its body then."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        code, body = await readiness(gateway)
        if code == status:
            return body
        assert time.monotonic() < deadline, f"still {code} {body}:\n{gateway.log()[-3000:]}"
        await asyncio.sleep(0.05)  # a process restarting: there is no event to wait on


async def test_not_ready_while_the_delivery_worker_restarts(tmp_path: pathlib.Path):
    gateway = GatewayProcess(tmp_path / "data", "--dispatch", "worker")
    await asyncio.to_thread(gateway.start)
    try:
        assert gateway.proc is not None
        assert await until_status(gateway, 200) == {"ready": True, "reasons": []}
        worker = await wait_for_child(gateway.proc.pid)

        os.kill(worker, signal.SIGKILL)

        body = await until_status(gateway, 503)
        assert body["ready"] is False
        assert body["reasons"] == ["the delivery worker is not running (starting, or restarting)"]
        await until_status(gateway, 200)  # the supervisor restarted it
    finally:
        await asyncio.to_thread(gateway.stop)


async def test_not_ready_while_nats_is_down(tmp_path: pathlib.Path):
    require_nats_server()
    node = NatsServer(tmp_path, "solo")
    await asyncio.to_thread(node.start)
    gateway: GatewayProcess | None = None
    try:
        await wait_jetstream([node])
        store = f"--store={node.url}?prefix=t{uuid.uuid4().hex[:10]}"
        gateway = GatewayProcess(tmp_path / "gw", store)
        await asyncio.to_thread(gateway.start, 30.0)
        await until_status(gateway, 200)

        await asyncio.to_thread(node.stop)

        body = await until_status(gateway, 503)
        reasons = body["reasons"]
        assert isinstance(reasons, list)
        assert any("NATS connection" in str(reason) for reason in reasons), reasons
        await asyncio.to_thread(node.start)
        await until_status(gateway, 200)
    finally:
        if gateway is not None and gateway.proc is not None:
            await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(node.stop)
