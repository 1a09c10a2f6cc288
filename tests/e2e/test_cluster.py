"""Two `eg serve` processes sharing everything through NATS JetStream.

Each process has its own data dir; configuration, deliveries, the delivery log, function
logs and code bundles are shared on the NATS server at 127.0.0.1:4222, under a prefix of
the test's own (everything with that prefix is deleted afterwards). The propagation test
reports how long instance B takes to route a change made on instance A (p50/p99); it
asserts only the 1 s goal's outer deadline per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import shutil
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from tests.support.nats_kv import NATS_URL, delete_prefix, require_nats, unique_prefix
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

CHANGES = 20
DEADLINE_S = 10.0


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: pathlib.Path, *extra: str
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateways on one fresh prefix; stopped and everything of the prefix deleted after."""
    require_nats()
    prefix = unique_prefix()
    store = f"--store={NATS_URL}?prefix={prefix}"
    processes = [GatewayProcess(tmp_path / name, store, *extra) for name in ("a", "b")]
    try:
        for process in processes:
            await asyncio.to_thread(process.start)
        yield processes[0], processes[1]
    finally:
        for process in processes:
            if process.proc is not None:
                await asyncio.to_thread(process.stop)
        await delete_prefix(prefix)


async def create(client: httpx.AsyncClient, url: str, resource: str, body: dict[str, Any]) -> None:
    response = await client.post(f"{url}/v1/spaces/acme/{resource}", json=body)
    assert response.status_code == 201, response.text


async def routed_event_types(client: httpx.AsyncClient, gateway: GatewayProcess) -> int:
    """How many event types of space acme the gateway's routing table holds (its gauge)."""
    return await routed(client, gateway, "eventtypes")


async def routed(client: httpx.AsyncClient, gateway: GatewayProcess, kind: str) -> int:
    """How many ``kind`` (eventtypes, subscriptions…) of space acme the gateway routes."""
    text = (await client.get(gateway.config_url + "/v1/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'eventgateway_{kind}_total{{space="acme"}}'):
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
        # The listing reads the store; routing follows B's watch a few ms later.
        deadline = time.monotonic() + DEADLINE_S
        while await routed(client, b, "subscriptions") < 1:
            assert time.monotonic() < deadline, "the subscription was not routed on B in time"
            await asyncio.sleep(0.002)  # another process's metrics: nothing to wait on

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


EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "crm-service"


async def users_in_logs(gateway: GatewayProcess, cwd: pathlib.Path, users: set[str]) -> None:
    """Wait until `eg logs` through ``gateway`` shows an invocation for each of ``users``."""
    deadline = time.monotonic() + 60
    while True:
        done = await asyncio.to_thread(gateway.eg, cwd, "logs", "-f", "addUserToCRM")
        text = done.stdout
        missing = {user for user in users if f"'username': '{user}'" not in text}
        if not missing:
            return
        assert time.monotonic() < deadline, f"never invoked for {sorted(missing)}:\n{text}"
        await asyncio.sleep(0.2)  # polling the shared log stream: nothing to wait on


async def test_deployed_through_one_instance_runs_on_both_and_logs_show_everywhere(
    tmp_path: pathlib.Path,
) -> None:
    service = tmp_path / "crm-service"
    shutil.copytree(EXAMPLE, service, ignore=shutil.ignore_patterns(".eventgateway", "tests"))
    async with cluster(tmp_path) as (a, b):
        await asyncio.to_thread(a.eg, service, "deploy")
        users = {f"user{index}" for index in range(10)}
        for user in sorted(users):
            data = json.dumps({"username": user})
            await asyncio.to_thread(
                b.eg, service, "emit", "--event", "user.created", "--data", data
            )
        await users_in_logs(a, service, users)  # B's invocations (if any) seen through A
        await users_in_logs(b, service, users)

        # The delivery log is written just after each ack: it may trail the logs a moment.
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                listed = await client.get(f"{b.config_url}/v1/spaces/acme-crm/events?limit=100")
                states = [event["state"] for event in listed.json()["events"]]
                if states == ["delivered"] * 10 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)  # polling the shared delivery log: nothing to wait on
    assert states == ["delivered"] * 10


async def test_an_instance_killed_under_load_loses_nothing_accepted(
    tmp_path: pathlib.Path, receiver: Receiver
) -> None:
    total = 200
    async with cluster(tmp_path, "--lease-timeout", "3") as (a, b):
        async with httpx.AsyncClient(timeout=5) as client:
            function = {
                "functionId": "crm",
                "type": "http",
                "provider": {"url": receiver.url("/crm")},
            }
            await create(client, a.config_url, "functions", function)
            await create(client, a.config_url, "eventtypes", {"name": "user.created"})
            subscription = {"type": "async", "eventType": "user.created", "functionId": "crm"}
            await create(client, a.config_url, "subscriptions", {**subscription, "path": "/acme"})
            accepted: set[str] = set()
            killed = False
            for index in range(total):
                target = a if index % 2 and not killed else b
                event = {
                    "specversion": "1.0",
                    "id": f"e{index}",
                    "source": "/load",
                    "type": "user.created",
                    "data": {"n": index},
                }
                response = await client.post(
                    f"{target.events_url}/acme",
                    json=event,
                    headers={"content-type": "application/cloudevents+json"},
                )
                if response.status_code == 202:
                    accepted.add(f"e{index}")
                if index == total // 2:
                    assert a.proc is not None
                    a.proc.kill()  # SIGKILL mid-stream: its leases must come back to B
                    a.proc.wait()
                    killed = True
        await receiver.wait_until(
            lambda: {call.json()["id"] for call in receiver.calls} >= accepted, timeout_s=60
        )
    delivered = [call.json()["id"] for call in receiver.calls]
    duplicates = len(delivered) - len(set(delivered))
    print(f"accepted {len(accepted)}, delivered {len(set(delivered))}, duplicates {duplicates}")
    assert len(accepted) >= total // 2
    assert set(delivered) >= accepted


async def test_nats_prefix_flag_names_every_stream_and_bucket(tmp_path: pathlib.Path) -> None:
    require_nats()
    prefix = unique_prefix()
    gateway = GatewayProcess(tmp_path / "p", f"--store={NATS_URL}", "--nats-prefix", prefix)
    try:
        await asyncio.to_thread(gateway.start)
        nc = await nats.connect(servers=[NATS_URL], connect_timeout=2, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            names = [
                f"KV_{prefix}-config",
                f"{prefix}-deliveries",
                f"{prefix}-deadletters",
                f"{prefix}-log",
                f"{prefix}-logs",
                f"OBJ_{prefix}-bundles",
            ]
            found = [(await js.stream_info(name)).config.name for name in names]
        finally:
            await nc.close()
    finally:
        if gateway.proc is not None:
            await asyncio.to_thread(gateway.stop)
        deleted = await delete_prefix(prefix)
    assert found == names
    assert sorted(deleted) == sorted(names)  # nothing else was made under it
