"""Async deliveries to local runtime functions through the delivery worker (`eg serve`)."""

from __future__ import annotations

import asyncio
import pathlib
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

HANDLER = """
import os, time


def handler(event, context):
    time.sleep(float(os.environ["SLEEP_S"]))
    with open(os.environ["RUNS_FILE"], "a") as runs:
        runs.write(event["data"]["n"] + "\\n")
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("runtime-delivery") / "data")
    process.start()
    yield process
    process.stop()


def settled(gateway: GatewayProcess, space: str, count: int, timeout_s: float) -> list[Any]:
    """The space's events once ``count`` of them are no longer pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = httpx.get(f"{gateway.config_url}/v1/spaces/{space}/events").json()["events"]
        done = [event for event in events if event["state"] != "pending"]
        if len(done) >= count:
            return events
        assert time.monotonic() < deadline, events
        time.sleep(0.2)  # polling the delivery log: there is nothing to wait on


def test_an_attempt_waits_for_the_function_timeout_not_the_attempt_timeout(
    gateway: GatewayProcess, tmp_path: pathlib.Path
):
    # The handler takes 7 s, over attemptTimeoutMs (1 s) and its 5 s margin, under its own
    # timeout (20 s): the local runtime's timeout is the function's, as on Lambda. The
    # worker used to give up at 6 s and retry while the handler ran on: two runs, and a
    # failed attempt in the log for a handler that succeeded.
    service = tmp_path / "slow"
    service.mkdir()
    runs = tmp_path / "runs.txt"
    (service / "handler.py").write_text(HANDLER)
    (service / "serverless.yml").write_text(
        textwrap.dedent(
            f"""\
            service: slow
            provider: {{name: eventgateway, runtime: python3.11}}
            custom: {{eventgateway: {{space: slow-space}}}}
            functions:
              slow:
                handler: handler.handler
                timeout: 20
                concurrency: 1
                environment: {{SLEEP_S: "7", RUNS_FILE: "{runs}"}}
                events:
                  - eventgateway:
                      event: slow.happened
                      retryPolicy: {{attemptTimeoutMs: 1000, maxAttempts: 3}}
            """
        )
    )
    gateway.eg(service, "deploy")
    gateway.eg(service, "emit", "--event", "slow.happened", "--data", '{"n": "one"}')

    [event] = settled(gateway, "slow-space", 1, timeout_s=60)

    assert event["state"] == "delivered", event
    assert runs.read_text() == "one\n"


async def started(client: httpx.AsyncClient, logs_url: str) -> None:
    """Until the function's log shows an invocation's START line (it holds the worker)."""
    deadline = time.monotonic() + 30
    while True:
        logs = (await client.get(logs_url)).json().get("logs", [])
        if any(line["message"].startswith("START RequestId") for line in logs):
            return
        assert time.monotonic() < deadline, logs
        await asyncio.sleep(0.05)  # polling the log: there is nothing to wait on


SYNC_HANDLER = """
import os, time


def handler(event, context):
    n = event["data"]["query"]["n"][0]
    time.sleep(float(os.environ["SLEEP_S"]))
    with open(os.environ["RUNS_FILE"], "a") as runs:
        runs.write(n + "\\n")
    return {"statusCode": 200, "body": n}
"""


async def test_a_sync_call_whose_client_left_while_it_waited_for_a_worker_is_not_run(
    gateway: GatewayProcess, tmp_path: pathlib.Path
):
    # QA: with the one worker busy, calls whose clients had given up still ran afterwards.
    service = tmp_path / "users"
    service.mkdir()
    runs = tmp_path / "runs.txt"
    (service / "handler.py").write_text(SYNC_HANDLER)
    (service / "serverless.yml").write_text(
        textwrap.dedent(
            f"""\
            service: users
            provider: {{name: eventgateway, runtime: python3.11}}
            custom: {{eventgateway: {{space: sync-space}}}}
            functions:
              slow:
                handler: handler.handler
                concurrency: 1
                environment: {{SLEEP_S: "2", RUNS_FILE: "{runs}"}}
                events:
                  - eventgateway: {{event: http, path: /slow, method: GET}}
            """
        )
    )
    gateway.eg(service, "deploy")
    url = f"{gateway.events_url}/sync-space/slow"
    async with httpx.AsyncClient(timeout=30) as client:
        first = asyncio.create_task(client.get(url, params={"n": "first"}))
        await started(client, f"{gateway.config_url}/v1/spaces/sync-space/functions/slow/logs")
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url, params={"n": "gave-up"}, timeout=0.5)
        # FIFO: had the abandoned call still waited, it would run before this one.
        last = await client.get(url, params={"n": "last"})
        assert (await first).text == "first"
    assert last.text == "last"
    assert runs.read_text() == "first\nlast\n"


PID_HANDLER = """
import os


def handler(event, context):
    return {"statusCode": 200, "body": str(os.getpid())}
"""


def _pid_service(service: pathlib.Path, timeout_s: int) -> None:
    (service / "serverless.yml").write_text(
        textwrap.dedent(
            f"""\
            service: pids
            provider: {{name: eventgateway, runtime: python3.11}}
            custom: {{eventgateway: {{space: pid-space}}}}
            functions:
              pid:
                handler: handler.handler
                timeout: {timeout_s}
                events:
                  - eventgateway: {{event: http, path: /pid, method: GET}}
            """
        )
    )


def _gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pathlib.Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # another process's exit: nothing to wait on from here
    return True


def test_a_redeploy_stops_the_old_idle_workers_without_waiting_for_a_call(
    gateway: GatewayProcess, tmp_path: pathlib.Path
):
    # QA: after a redeploy the old warm workers ran on until the function's next call (or
    # 5 idle minutes), though docs/runtime.md said they stop as soon as they are idle.
    service = tmp_path / "pids"
    service.mkdir()
    (service / "handler.py").write_text(PID_HANDLER)
    _pid_service(service, timeout_s=6)
    gateway.eg(service, "deploy")
    url = f"{gateway.events_url}/pid-space/pid"
    old_pid = int(httpx.get(url, timeout=30).text)

    _pid_service(service, timeout_s=4)  # a setting only: the same bundle
    gateway.eg(service, "deploy")

    assert _gone(old_pid, timeout_s=15)
    new_pid = int(httpx.get(url, timeout=30).text)
    assert new_pid != old_pid
    gateway.eg(service, "deploy")  # nothing changed: the warm worker stays
    assert int(httpx.get(url, timeout=30).text) == new_pid
