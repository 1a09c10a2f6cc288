"""Failure behaviour on NATS, with nats-server processes the tests start and kill themselves.

* NATS restarted under a running gateway: the Events API answers 503 (never 202) while
  it cannot persist, 202 again after, and every event that got a 202 is delivered.
* A 3-node cluster with replicas 3: one node SIGKILLed under load and restarted; every
  event that got a 202 is delivered, and the restarted node catches up.
* Two gateways on one NATS that is restarted: a configuration write through A during the
  outage is refused (500, "NATS store failed…"); made after the restart, B routes by it.

The figures (503 window, recovery time, duplicates) are printed; `pytest -s` shows them.
Nothing is asserted about timing but the per-step deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.nats_server import NatsServer, cluster, require_nats_server, wait_jetstream
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

STEP_TIMEOUT_S = 20.0
PHASE = 100  # events accepted before the kill, while down, and after the restart


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: pathlib.Path,
    nodes: list[NatsServer],
    options: str,
    *,
    prefix: str | None = None,
    name: str = "gw",
) -> AsyncIterator[GatewayProcess]:
    """One `eg serve` on ``nodes`` (under ``prefix``, default a new one)."""
    servers = ",".join(node.url for node in nodes)
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}"
    store = f"--store={servers}?prefix={prefix}{options}"
    process = GatewayProcess(tmp_path / name, store, "--lease-timeout", "3")
    try:
        await asyncio.to_thread(process.start, 30.0)
        yield process
    finally:
        if process.proc is not None:
            await asyncio.to_thread(process.stop)


async def subscribe(client: httpx.AsyncClient, gw: GatewayProcess, receiver: Receiver) -> None:
    base = f"{gw.config_url}/v1/spaces/acme"
    for resource, body in (
        (
            "functions",
            {"functionId": "crm", "type": "http", "provider": {"url": receiver.url("/crm")}},
        ),
        ("eventtypes", {"name": "user.created"}),
        (
            "subscriptions",
            {"type": "async", "eventType": "user.created", "functionId": "crm", "path": "/acme"},
        ),
    ):
        response = await client.post(f"{base}/{resource}", json=body)
        assert response.status_code == 201, response.text


async def emit(client: httpx.AsyncClient, gw: GatewayProcess, event_id: str) -> int:
    """POST one event; its status code (0 when the gateway did not answer at all)."""
    event = {"specversion": "1.0", "id": event_id, "source": "/load", "type": "user.created"}
    try:
        response = await client.post(
            f"{gw.events_url}/acme",
            json=event,
            headers={"content-type": "application/cloudevents+json"},
        )
    except httpx.TransportError:
        return 0
    if response.status_code == 503:
        assert response.headers.get("retry-after"), "a 503 must say when to retry"
    return response.status_code


async def all_delivered(receiver: Receiver, accepted: set[str]) -> dict[str, int]:
    """Wait until every accepted id reached the receiver; the ids delivered more than once."""
    await receiver.wait_until(
        lambda: {call.json()["id"] for call in receiver.calls} >= accepted,
        timeout_s=STEP_TIMEOUT_S,
    )
    counts = Counter(call.json()["id"] for call in receiver.calls)
    return {event_id: n for event_id, n in counts.items() if n > 1}


async def test_nats_restarted_under_a_gateway_answers_503_then_recovers_losing_nothing(
    tmp_path: pathlib.Path, receiver: Receiver
) -> None:
    require_nats_server()
    node = NatsServer(tmp_path, "solo")
    await asyncio.to_thread(node.start)
    try:
        await wait_jetstream([node])
        async with (
            gateway(tmp_path, [node], "") as gw,
            httpx.AsyncClient(timeout=15) as client,
        ):
            await subscribe(client, gw, receiver)
            accepted: set[str] = set()
            for index in range(20):
                assert await emit(client, gw, f"before{index}") == 202
                accepted.add(f"before{index}")

            await asyncio.to_thread(node.stop)
            down_at = time.monotonic()
            down_answers: list[tuple[int, float]] = []
            for index in range(3):
                sent = time.monotonic()
                status = await emit(client, gw, f"down{index}")
                down_answers.append((status, time.monotonic() - sent))
            assert all(status == 503 for status, _ in down_answers), down_answers

            await asyncio.to_thread(node.start)
            restarted_at = time.monotonic()
            await wait_jetstream([node])
            deadline = restarted_at + STEP_TIMEOUT_S
            index, first_202_s = 0, None
            while first_202_s is None:
                assert time.monotonic() < deadline, f"no 202 after the restart:\n{gw.log()}"
                status = await emit(client, gw, f"after{index}")
                if status == 202:
                    accepted.add(f"after{index}")
                    first_202_s = time.monotonic() - restarted_at
                index += 1
            refused_after = index - 1
            for index in range(20):
                assert await emit(client, gw, f"later{index}") == 202
                accepted.add(f"later{index}")

            duplicates = await all_delivered(receiver, accepted)
            watch_failed = "config store watch failed" in gw.log()
    finally:
        await asyncio.to_thread(node.stop)
    slowest = max(elapsed for _, elapsed in down_answers)
    print(
        f"\nNATS down {restarted_at - down_at:.1f} s: {len(down_answers)} events answered 503 "
        f"(slowest answer {slowest:.2f} s); first 202 {first_202_s:.2f} s after the restart "
        f"({refused_after} refused before it); "
        f"accepted {len(accepted)}, all delivered, duplicates {duplicates or 0}; "
        f"config watch failed: {watch_failed}"
    )


async def test_a_nats_node_killed_under_load_loses_no_accepted_event_and_catches_up(
    tmp_path: pathlib.Path, receiver: Receiver
) -> None:
    require_nats_server()
    nodes = cluster(tmp_path / "nats")
    victim = nodes[0]
    for node in nodes:
        await asyncio.to_thread(node.start)
    try:
        await wait_jetstream(nodes)
        async with (
            gateway(tmp_path, nodes, "&replicas=3") as gw,
            httpx.AsyncClient(timeout=15) as client,
        ):
            await subscribe(client, gw, receiver)
            accepted: set[str] = set()
            refused: Counter[int] = Counter()
            sent = 0

            async def until_accepted(count: int) -> None:
                """Send events until ``count`` more got a 202 (a refused one is not accepted)."""
                nonlocal sent
                goal, deadline = len(accepted) + count, time.monotonic() + STEP_TIMEOUT_S
                while len(accepted) < goal:
                    assert time.monotonic() < deadline, f"refused {refused}:\n{gw.log()}"
                    status = await emit(client, gw, f"e{sent}")
                    if status == 202:
                        accepted.add(f"e{sent}")
                    else:
                        refused[status] += 1
                    sent += 1

            await until_accepted(PHASE)
            await asyncio.to_thread(victim.kill)  # kill -9 mid-stream
            await until_accepted(PHASE)
            await asyncio.to_thread(victim.start)
            restarted_at = time.monotonic()
            await until_accepted(PHASE)
            duplicates = await all_delivered(receiver, accepted)

            # Catching up: the restarted node holds every stream, at the others' last sequence.
            deadline = restarted_at + STEP_TIMEOUT_S
            async with httpx.AsyncClient() as monitor:
                while True:
                    theirs = await nodes[1].streams(monitor)
                    with contextlib.suppress(httpx.HTTPError):
                        mine = await victim.streams(monitor)
                        if set(mine) == set(theirs) and all(
                            mine[name].get("last_seq") == state.get("last_seq")
                            for name, state in theirs.items()
                        ):
                            break
                    assert time.monotonic() < deadline, f"{victim.name} did not catch up"
                    await asyncio.sleep(0.1)  # polling another process: nothing to wait on
            caught_up_s = time.monotonic() - restarted_at
    finally:
        for node in nodes:
            await asyncio.to_thread(node.stop)
    print(
        f"\n3 nodes, replicas 3, {victim.name} killed after {PHASE} accepted events, "
        f"restarted after {2 * PHASE}: accepted {len(accepted)}/{sent}, refused {dict(refused)}, "
        f"all delivered, duplicates {duplicates or 0}; caught up {caught_up_s:.2f} s after "
        f"its restart, streams {sorted(theirs)}"
    )


async def routed(client: httpx.AsyncClient, gw: GatewayProcess, resource: str) -> int:
    """How many ``resource`` (functions, subscriptions...) of acme the routing table holds."""
    text = (await client.get(f"{gw.config_url}/v1/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'eventgateway_{resource}_total{{space="acme"}}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def until_routed(
    client: httpx.AsyncClient, gw: GatewayProcess, resource: str, n: int
) -> float:
    """Seconds until ``gw`` routes ``n`` of ``resource``; fails after the step deadline."""
    started = time.monotonic()
    deadline = started + STEP_TIMEOUT_S
    while await routed(client, gw, resource) < n:
        assert time.monotonic() < deadline, f"{resource} not routed in time:\n{gw.log()}"
        await asyncio.sleep(0.01)  # polling another process's metrics: nothing to wait on
    return time.monotonic() - started


async def test_a_change_made_after_a_nats_restart_reaches_the_other_instances_routing(
    tmp_path: pathlib.Path, receiver: Receiver
) -> None:
    require_nats_server()
    node = NatsServer(tmp_path, "solo")
    await asyncio.to_thread(node.start)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    subscription = {
        "type": "async",
        "eventType": "user.created",
        "functionId": "crm",
        "path": "/acme",
    }
    try:
        await wait_jetstream([node])
        async with (
            gateway(tmp_path, [node], "", prefix=prefix, name="a") as a,
            gateway(tmp_path, [node], "", prefix=prefix, name="b") as b,
            httpx.AsyncClient(timeout=15) as client,
        ):
            base = f"{a.config_url}/v1/spaces/acme"
            function = {
                "functionId": "crm",
                "type": "http",
                "provider": {"url": receiver.url("/crm")},
            }
            for resource, body in (
                ("functions", function),
                ("eventtypes", {"name": "user.created"}),
            ):
                response = await client.post(f"{base}/{resource}", json=body)
                assert response.status_code == 201, response.text
            await until_routed(client, b, "functions", 1)  # B's watch is live

            await asyncio.to_thread(node.stop)
            refused = await client.post(f"{base}/subscriptions", json=subscription)
            # The Configuration API answers a store failure 500 with its text (as the
            # original did); what matters is that nothing claims the write was made.
            assert refused.status_code == 500, refused.text
            assert "NATS store failed" in refused.text

            await asyncio.to_thread(node.start)
            await wait_jetstream([node])
            deadline, tries = time.monotonic() + STEP_TIMEOUT_S, 0
            while (
                response := await client.post(f"{base}/subscriptions", json=subscription)
            ).status_code != 201:
                tries += 1
                assert response.status_code == 500, response.text  # not reconnected yet
                assert time.monotonic() < deadline, f"no write after the restart:\n{a.log()}"
                await asyncio.sleep(0.1)  # a reconnect has no event to wait on from here
            routed_s = await until_routed(client, b, "subscriptions", 1)

            emitted = await emit(client, b, "after-restart")
            [call] = await receiver.wait_for(1, "/crm")
            watch_failed = "config store watch failed" in b.log()
    finally:
        await asyncio.to_thread(node.stop)
    assert emitted == 202
    assert call.json()["id"] == "after-restart"
    assert not watch_failed
    print(
        f"\nwrite during the outage: {refused.status_code}; after the restart {tries} more "
        f"refused, then 201; routed on B {routed_s * 1000:.0f} ms after the write"
    )
