"""kill -9 under load loses no accepted event: a real `eg serve`, a real receiver, SQLite."""

from __future__ import annotations

import asyncio
import collections
import pathlib
import signal

import httpx
import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

EVENTS = 2000
KILL_AFTER = 800
CONCURRENCY = 32


async def _configure(gateway: GatewayProcess, receiver: Receiver) -> None:
    async with httpx.AsyncClient(base_url=gateway.config_url) as client:
        for path, body in [
            (
                "functions",
                {"functionId": "sink", "type": "http", "provider": {"url": receiver.url("/sink")}},
            ),
            ("eventtypes", {"name": "load.tick"}),
            (
                "subscriptions",
                {
                    "type": "async",
                    "eventType": "load.tick",
                    "functionId": "sink",
                    "path": "/load",
                    "retryPolicy": {"initialDelayMs": 100, "maxDelayMs": 500, "jitter": False},
                },
            ),
        ]:
            response = await client.post(f"/v1/spaces/load/{path}", json=body)
            assert response.status_code == 201, response.text


def _event(n: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"ev-{n}", "source": "/load", "type": "load.tick"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("dispatch", ["inline", "process"])
async def test_sigkill_under_load_loses_no_accepted_event(
    tmp_path: pathlib.Path, receiver: Receiver, dispatch: str
):
    args = ("--lease-timeout", "2", "--dispatch", dispatch)
    data_dir = tmp_path / "data"
    gateway = await asyncio.to_thread(GatewayProcess(data_dir, *args).start)
    await _configure(gateway, receiver)

    accepted: set[str] = set()
    killed = asyncio.Event()
    numbers = iter(range(EVENTS))

    async def sender(client: httpx.AsyncClient) -> None:
        for n in numbers:
            if killed.is_set():
                return
            try:
                response = await client.post(
                    "/load",
                    json=_event(n),
                    headers={"content-type": "application/cloudevents+json"},
                )
            except httpx.TransportError:
                return  # the gateway is gone: this event was not accepted
            if response.status_code == 202:
                accepted.add(f"ev-{n}")
            if len(accepted) >= KILL_AFTER and not killed.is_set():
                killed.set()
                assert gateway.proc is not None
                gateway.proc.send_signal(signal.SIGKILL)

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=gateway.events_url, limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(CONCURRENCY)))
    await asyncio.to_thread(gateway.proc.wait)  # type: ignore[union-attr]
    assert gateway.proc is not None
    assert gateway.proc.returncode == -signal.SIGKILL
    assert len(accepted) >= KILL_AFTER

    restarted = await asyncio.to_thread(GatewayProcess(data_dir, *args).start)
    try:

        def delivered_ids() -> set[str]:
            return {call.json()["id"] for call in receiver.calls_to("/sink")}

        await receiver.wait_until(lambda: accepted <= delivered_ids(), timeout_s=60)
    finally:
        await asyncio.to_thread(restarted.stop)
    counts = collections.Counter(call.json()["id"] for call in receiver.calls_to("/sink"))
    duplicates = sum(count - 1 for count in counts.values())
    print(
        f"\n[{dispatch}] accepted {len(accepted)}, delivered {len(counts)} distinct, "
        f"{duplicates} duplicate deliveries (at-least-once redeliveries after the kill)"
    )
    assert accepted <= set(counts)
