"""`eg serve` (default: --dispatch process) restarts a killed delivery worker; nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import time
from typing import Any

import httpx
import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver, Reply

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


async def wait_for_child(pid: int, *, other_than: int | None = None, timeout_s: float = 15) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [child for child in children(pid) if child != other_than]
        if found:
            return found[0]
        await asyncio.sleep(0.05)  # a process appearing: there is no event to wait on
    raise TimeoutError("no delivery worker process appeared")


async def subscribe(gateway: GatewayProcess, function_url: str, **retry_policy: Any) -> None:
    """Function f at ``function_url`` in space work, subscribed to t.happened on /work."""
    subscription = {"type": "async", "eventType": "t.happened", "functionId": "f"}
    async with httpx.AsyncClient(base_url=gateway.config_url) as config:
        for path, body in [
            ("functions", {"functionId": "f", "type": "http", "provider": {"url": function_url}}),
            ("eventtypes", {"name": "t.happened"}),
            ("subscriptions", {**subscription, "path": "/work", "retryPolicy": retry_policy}),
        ]:
            assert (await config.post(f"/v1/spaces/work/{path}", json=body)).status_code == 201


async def test_killed_worker_is_restarted_and_deliveries_continue(
    tmp_path: pathlib.Path, receiver: Receiver
):
    gateway = await asyncio.to_thread(GatewayProcess(tmp_path / "data").start)
    try:
        assert gateway.proc is not None
        await subscribe(gateway, receiver.url("/f"), initialDelayMs=100, jitter=False)
        worker = await wait_for_child(gateway.proc.pid)
        os.kill(worker, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=gateway.events_url) as events:
            for n in range(20):
                event = {
                    "specversion": "1.0",
                    "id": f"e{n}",
                    "source": "/work",
                    "type": "t.happened",
                }
                response = await events.post(
                    "/work", json=event, headers={"content-type": "application/cloudevents+json"}
                )
                assert response.status_code == 202
        await receiver.wait_until(
            lambda: {c.json()["id"] for c in receiver.calls} >= {f"e{n}" for n in range(20)},
            timeout_s=30,
        )
        replacement = await wait_for_child(gateway.proc.pid, other_than=worker)
        assert replacement != worker
    finally:
        code = await asyncio.to_thread(gateway.stop)
    assert code == 0
    assert "delivery worker" in gateway.log()


def running(pid: int) -> bool:
    return pathlib.Path(f"/proc/{pid}").exists()


def listening_inodes(ports: set[int]) -> set[str]:
    """The socket inodes listening on ``ports`` (IPv4), from /proc/net/tcp."""
    found = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if fields[3] == "0A" and local_port in ports:  # 0A: LISTEN
            found.add(fields[9])
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # an fd closed while we look
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


async def test_the_worker_holds_neither_listener(tmp_path: pathlib.Path):
    # Were it to inherit them, a kill -9 of `eg serve` would leave the ports held by the
    # worker until its last delivery ended: connections accepted, never served, and a
    # restart refused with "address already in use".
    gateway = await asyncio.to_thread(GatewayProcess(tmp_path / "data").start)
    try:
        assert gateway.proc is not None
        worker = await wait_for_child(gateway.proc.pid)
        listeners = listening_inodes({gateway.events_port, gateway.config_port})

        assert len(listeners) == 2
        assert listeners <= socket_inodes(gateway.proc.pid)
        assert not listeners & socket_inodes(worker)
    finally:
        await asyncio.to_thread(gateway.stop)


async def test_a_restart_waits_for_the_worker_a_killed_gateway_left_behind(
    tmp_path: pathlib.Path, receiver: Receiver
):
    # kill -9 of `eg serve` leaves its worker finishing the attempt in flight. A gateway
    # started on the data dir meanwhile used to link to that worker, lose it when it
    # exited, and answer 202 with nothing delivered: now it is refused until the worker
    # is gone, and then starts and delivers.
    arrived = asyncio.Event()

    def slow(_: object) -> Reply:
        arrived.set()
        return Reply(status=200, delay_s=3)

    receiver.reply("/slow", slow)
    data_dir = tmp_path / "data"
    first = await asyncio.to_thread(GatewayProcess(data_dir).start)
    assert first.proc is not None
    await subscribe(first, receiver.url("/slow"))
    worker = await wait_for_child(first.proc.pid)
    event = {"specversion": "1.0", "id": "e0", "source": "/work", "type": "t.happened"}
    headers = {"content-type": "application/cloudevents+json"}
    async with httpx.AsyncClient() as client:
        response = await client.post(first.events_url + "/work", json=event, headers=headers)
    assert response.status_code == 202
    await asyncio.wait_for(arrived.wait(), 10)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)

    refused = await asyncio.to_thread(GatewayProcess(data_dir).start_refused)
    assert f"delivery worker of a gateway that stopped (pid {first.proc.pid})" in refused

    deadline = time.monotonic() + 30
    while running(worker):
        assert time.monotonic() < deadline, "the orphaned worker did not exit"
        await asyncio.sleep(0.05)  # a process ending: there is no event to wait on here
    third = await asyncio.to_thread(GatewayProcess(data_dir).start)
    try:
        event["id"] = "e1"
        async with httpx.AsyncClient() as client:
            response = await client.post(third.events_url + "/work", json=event, headers=headers)
        assert response.status_code == 202
        await receiver.wait_until(
            lambda: "e1" in {c.json()["id"] for c in receiver.calls}, timeout_s=20
        )
    finally:
        await asyncio.to_thread(third.stop)


async def test_an_orphaned_worker_stops_within_the_shutdown_timeout_and_its_attempt_returns(
    tmp_path: pathlib.Path, receiver: Receiver
):
    # After a kill -9 of `eg serve` nobody stops its worker but the worker itself: it must
    # keep to --shutdown-timeout, or a restart (refused while it holds the data dir) would
    # wait for its slowest attempt, up to attemptTimeoutMs (15 minutes).
    arrivals: list[float] = []

    def first_slow(_: object) -> Reply:
        arrivals.append(time.monotonic())
        return Reply(status=200, delay_s=12 if len(arrivals) == 1 else 0)

    receiver.reply("/slow", first_slow)
    data_dir = tmp_path / "data"
    first = await asyncio.to_thread(GatewayProcess(data_dir, "--shutdown-timeout", "1").start)
    assert first.proc is not None
    await subscribe(first, receiver.url("/slow"), attemptTimeoutMs=60000)
    worker = await wait_for_child(first.proc.pid)
    event = {"specversion": "1.0", "id": "e0", "source": "/work", "type": "t.happened"}
    headers = {"content-type": "application/cloudevents+json"}
    async with httpx.AsyncClient() as client:
        response = await client.post(first.events_url + "/work", json=event, headers=headers)
    assert response.status_code == 202
    deadline = time.monotonic() + 10
    while not arrivals:
        assert time.monotonic() < deadline, "the attempt never arrived"
        await asyncio.sleep(0.02)  # the receiver's own bookkeeping: no event to wait on
    killed = time.monotonic()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    while running(worker):
        assert time.monotonic() - killed < 8, "the orphaned worker ran past its shutdown timeout"
        await asyncio.sleep(0.05)  # a process ending: there is no event to wait on here

    second = await asyncio.to_thread(GatewayProcess(data_dir).start)
    try:
        await receiver.wait_until(lambda: len(arrivals) >= 2, timeout_s=20)
        await receiver.wait_until(lambda: "e0" in {c.json()["id"] for c in receiver.calls})
    finally:
        await asyncio.to_thread(second.stop)


async def test_a_call_worker_orphaned_by_a_kill_exits_without_a_traceback(
    tmp_path: pathlib.Path, receiver: Receiver
):
    gateway = await asyncio.to_thread(
        GatewayProcess(tmp_path / "data", "--dispatch", "process").start
    )
    assert gateway.proc is not None
    await subscribe(gateway, receiver.url("/f"))
    worker = await wait_for_child(gateway.proc.pid)
    event = {"specversion": "1.0", "id": "e0", "source": "/work", "type": "t.happened"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            gateway.events_url + "/work",
            json=event,
            headers={"content-type": "application/cloudevents+json"},
        )
    assert response.status_code == 202
    await receiver.wait_for(1, "/f")  # the gateway's connection to the worker is in use

    gateway.proc.send_signal(signal.SIGKILL)
    gateway.proc.wait(10)
    deadline = time.monotonic() + 15
    while running(worker):
        assert time.monotonic() < deadline, "the orphaned worker did not exit"
        await asyncio.sleep(0.05)  # a process ending: there is no event to wait on here

    assert "Traceback" not in gateway.log()
