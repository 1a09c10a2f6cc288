"""An attempt longer than the lease is made once: a live gateway renews its leases.

Before lease renewal, `--lease-timeout 1` with 3 s attempts made every delivery again each
second while the first attempt still ran.
"""

from __future__ import annotations

import asyncio
import pathlib
import time

import httpx
import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Received, Receiver, Reply

pytestmark = pytest.mark.e2e

EVENTS = 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("dispatch", ["worker", "process"])
async def test_an_attempt_longer_than_the_lease_is_made_once(
    tmp_path: pathlib.Path, receiver: Receiver, dispatch: str
) -> None:
    started: list[str] = []

    def slow(received: Received) -> Reply:
        started.append(received.json()["id"])  # counted as the attempt begins
        return Reply(delay_s=3.0)  # three leases

    receiver.reply("/slow", slow)
    args = ("--lease-timeout", "1", "--dispatch", dispatch)
    gateway = await asyncio.to_thread(GatewayProcess(tmp_path / "data", *args).start)
    try:
        async with httpx.AsyncClient(base_url=gateway.config_url) as config:
            for path, body in [
                (
                    "functions",
                    {"functionId": "f", "type": "http", "provider": {"url": receiver.url("/slow")}},
                ),
                ("eventtypes", {"name": "t.slow"}),
                (
                    "subscriptions",
                    {
                        "type": "async",
                        "eventType": "t.slow",
                        "functionId": "f",
                        "path": "/slow",
                        "retryPolicy": {"attemptTimeoutMs": 10000, "jitter": False},
                    },
                ),
            ]:
                response = await config.post(f"/v1/spaces/slow/{path}", json=body)
                assert response.status_code == 201, response.text
            async with httpx.AsyncClient(base_url=gateway.events_url) as events:
                for n in range(EVENTS):
                    event = {"specversion": "1.0", "id": f"e{n}", "source": "/s", "type": "t.slow"}
                    response = await events.post(
                        "/slow",
                        json=event,
                        headers={"content-type": "application/cloudevents+json"},
                    )
                    assert response.status_code == 202
            await receiver.wait_for(EVENTS, "/slow", timeout_s=20)  # the first attempts ended
            deadline = time.monotonic() + 10
            for n in range(EVENTS):  # and were settled: no copy can start after this
                while (await config.get(f"/v1/spaces/slow/events/e{n}")).json()["state"] != (
                    "delivered"
                ):
                    assert time.monotonic() < deadline, f"e{n} was not settled"
                    await asyncio.sleep(0.05)
        assert sorted(started) == [f"e{n}" for n in range(EVENTS)]  # one attempt each
    finally:
        await asyncio.to_thread(gateway.stop)
