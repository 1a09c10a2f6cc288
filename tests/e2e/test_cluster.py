"""Two `eg serve` processes sharing their configuration through NATS JetStream KV.

Each process has its own data dir (queue, logs and bundles are still local SQLite); only
the configuration is shared, in the bucket ``<prefix>-config`` of the NATS server at
127.0.0.1:4222. The propagation test reports how long instance B takes to route a change
made on instance A (p50/p99); it asserts only the 1 s goal's outer deadline per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.nats_kv import NATS_URL, delete_buckets, require_nats, unique_prefix
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

CHANGES = 20
DEADLINE_S = 10.0


@contextlib.asynccontextmanager
async def cluster(tmp_path: pathlib.Path) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateways on one fresh prefix; stopped and the bucket deleted afterwards."""
    require_nats()
    prefix = unique_prefix()
    store = f"--store={NATS_URL}?prefix={prefix}"
    processes = [GatewayProcess(tmp_path / name, store) for name in ("a", "b")]
    try:
        for process in processes:
            await asyncio.to_thread(process.start)
        yield processes[0], processes[1]
    finally:
        for process in processes:
            if process.proc is not None:
                await asyncio.to_thread(process.stop)
        await delete_buckets(prefix, "config")


async def create(client: httpx.AsyncClient, url: str, resource: str, body: dict[str, Any]) -> None:
    response = await client.post(f"{url}/v1/spaces/acme/{resource}", json=body)
    assert response.status_code == 201, response.text


async def routed_event_types(client: httpx.AsyncClient, gateway: GatewayProcess) -> int:
    """How many event types of space acme the gateway's routing table holds (its gauge)."""
    text = (await client.get(gateway.config_url + "/v1/metrics")).text
    for line in text.splitlines():
        if line.startswith('eventgateway_eventtypes_total{space="acme"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def test_a_subscription_made_on_one_instance_delivers_events_emitted_on_another(
    tmp_path: pathlib.Path, receiver: Receiver
) -> None:
    async with cluster(tmp_path) as (a, b), httpx.AsyncClient(timeout=5) as client:
        function = {"functionId": "crm", "type": "http", "provider": {"url": receiver.url("/crm")}}
        await create(client, a.config_url, "functions", function)
        await create(client, a.config_url, "eventtypes", {"name": "user.created"})
        subscription = {
            "type": "async",
            "eventType": "user.created",
            "functionId": "crm",
            "path": "/acme",
        }
        await create(client, a.config_url, "subscriptions", subscription)
        listed = (await client.get(b.config_url + "/v1/spaces/acme/subscriptions")).json()
        assert len(listed["subscriptions"]) == 1

        emitted = await client.post(
            b.events_url + "/acme",
            json={
                "specversion": "1.0",
                "id": "e-cluster",
                "source": "/users",
                "type": "user.created",
                "data": {"name": "Ada"},
            },
            headers={"Content-Type": "application/cloudevents+json"},
        )
        [call] = await receiver.wait_for(1, "/crm")

    assert emitted.status_code == 202
    assert call.json()["id"] == "e-cluster"


async def test_changes_on_one_instance_reach_the_others_routing_table(
    tmp_path: pathlib.Path,
) -> None:
    delays_s: list[float] = []
    async with cluster(tmp_path) as (a, b), httpx.AsyncClient(timeout=5) as client:
        for n in range(1, CHANGES + 1):
            await create(client, a.config_url, "eventtypes", {"name": f"type.{n}"})
            written = time.monotonic()
            deadline = written + DEADLINE_S
            # Polling another process's metrics: there is no event to wait on across it.
            while await routed_event_types(client, b) < n:
                assert time.monotonic() < deadline, f"change {n} not routed on B in time"
                await asyncio.sleep(0.002)
            delays_s.append(time.monotonic() - written)

    cuts = statistics.quantiles(delays_s, n=100, method="inclusive")
    print(  # the issue asks for the measured figures; `pytest -s` shows them
        f"\npropagation A->B over {CHANGES} changes: p50 {cuts[49] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms, max {max(delays_s) * 1000:.1f} ms"
    )
