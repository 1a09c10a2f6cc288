"""`eg serve` as a real process: startup, shutdown, restarts, bad input over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver, Reply

pytestmark = pytest.mark.e2e

STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def cloudevent(event_id: str, event_type: str = "user.created") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/users",
        "type": event_type,
        "datacontenttype": "application/json",
        "data": {"name": "Ada"},
    }


@contextlib.contextmanager
def running(data_dir: pathlib.Path, *args: str) -> Iterator[GatewayProcess]:
    """`eg serve` on ``data_dir``, stopped afterwards even if it never got ready."""
    process = GatewayProcess(data_dir, *args)
    try:
        yield process.start()
    finally:
        if process.proc is not None:
            process.stop()


@contextlib.asynccontextmanager
async def running_async(data_dir: pathlib.Path, *args: str) -> AsyncIterator[GatewayProcess]:
    """:func:`running` for async tests: start and stop off the event loop."""
    process = GatewayProcess(data_dir, *args)
    try:
        yield await asyncio.to_thread(process.start)
    finally:
        if process.proc is not None:
            await asyncio.to_thread(process.stop)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway shared by the tests that only read or write their own space."""
    with running(tmp_path_factory.mktemp("serve") / "data") as process:
        yield process


async def create(config_url: str, space: str, resource: str, body: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=config_url, timeout=5) as client:
        response = await client.post(f"/v1/spaces/{space}/{resource}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def subscribe_function(
    config_url: str, function_url: str, function_id: str, **subscription: Any
) -> None:
    """An http function in space acme and an async subscription of it to user.created."""
    await create(
        config_url,
        "acme",
        "functions",
        {"functionId": function_id, "type": "http", "provider": {"url": function_url}},
    )
    await create(config_url, "acme", "eventtypes", {"name": "user.created"})
    body = {"type": "async", "eventType": "user.created", "functionId": function_id}
    await create(config_url, "acme", "subscriptions", {**body, "path": "/acme", **subscription})


# -- startup ---------------------------------------------------------------------------------


def test_serves_status_on_the_config_port_and_events_on_the_events_port(gateway: GatewayProcess):
    with httpx.Client(timeout=5) as client:
        status = client.get(gateway.config_url + "/v1/status")
        event = client.post(
            gateway.events_url + "/acme/users", json=cloudevent("e-start"), headers=STRUCTURED
        )
        status_on_events_port = client.get(gateway.events_url + "/v1/status")

    assert (status.status_code, status.content) == (200, b"")
    assert (event.status_code, event.content) == (202, b"")
    # The events port treats every path as an event, even the config API's.
    assert status_on_events_port.status_code == 202


# -- shutdown --------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_shuts_down_gracefully_within_the_shutdown_timeout(
    tmp_path: pathlib.Path, sig: signal.Signals
):
    with running(tmp_path / "data", "--shutdown-timeout", "3") as process:
        assert process.proc is not None
        started = time.monotonic()
        process.proc.send_signal(sig)
        process.proc.wait(8)
        elapsed_s = time.monotonic() - started

    log = process.log()
    assert elapsed_s < 3 + 2
    assert "Application shutdown complete." in log
    assert "Finished server process" in log
    assert "Traceback" not in log


async def test_a_stuck_delivery_holds_the_shutdown_once_not_once_per_step(
    tmp_path: pathlib.Path, receiver: Receiver
):
    # Draining the worker and stopping it used to get the whole timeout each: 2 x 4 s here.
    arrived = asyncio.Event()

    def stuck(_: Any) -> Reply:
        arrived.set()
        return Reply(status=200, delay_s=10)  # past the shutdown, over soon after

    receiver.reply("/stuck", stuck)
    async with running_async(tmp_path / "data", "--shutdown-timeout", "4") as process:
        await subscribe_function(
            process.config_url,
            receiver.url("/stuck"),
            "stuck",
            retryPolicy={"attemptTimeoutMs": 120000},
        )
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(
                process.events_url + "/acme", json=cloudevent("e-stuck"), headers=STRUCTURED
            )
        await asyncio.wait_for(arrived.wait(), 10)
        assert process.proc is not None
        started = time.monotonic()
        process.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.proc.wait, 20)
        elapsed_s = time.monotonic() - started

    assert 4 <= elapsed_s < 4 + 3, process.log()


async def test_a_request_cut_off_by_the_shutdown_timeout_is_a_503_not_a_traceback(
    tmp_path: pathlib.Path, receiver: Receiver
):
    # uvicorn cancels requests still running past --shutdown-timeout: they were answered a
    # bare 500, with "Exception in ASGI application" and a traceback logged for each.
    arrived = asyncio.Event()

    def hung(_: Any) -> Reply:
        arrived.set()
        return Reply(status=200, delay_s=5)  # past the 1 s shutdown timeout

    receiver.reply("/hung", hung)
    async with running_async(tmp_path / "data", "--shutdown-timeout", "1") as process:
        base = f"{process.config_url}/v1/spaces/default"
        async with httpx.AsyncClient(timeout=15) as client:
            function = {
                "functionId": "hung",
                "type": "http",
                "provider": {"url": receiver.url("/hung")},
            }
            assert (await client.post(f"{base}/functions", json=function)).status_code == 201
            assert (
                await client.post(f"{base}/eventtypes", json={"name": "http.request"})
            ).status_code == 201
            route = {
                "type": "sync",
                "eventType": "http.request",
                "functionId": "hung",
                "path": "/slow",
                "method": "GET",
            }
            assert (await client.post(f"{base}/subscriptions", json=route)).status_code == 201
            request = asyncio.create_task(client.get(f"{process.events_url}/slow"))
            await asyncio.wait_for(arrived.wait(), 10)
            assert process.proc is not None
            process.proc.send_signal(signal.SIGTERM)
            answer = await asyncio.wait_for(request, 15)
            await asyncio.to_thread(process.proc.wait, 20)
        log = process.log()

    # QA: it carried Retry-After, so the SDK retried a call the function had already run
    # (on the restarted gateway: twice). A cut-off call is no refusal.
    assert answer.status_code == 503, answer.text
    assert "retry-after" not in answer.headers
    assert answer.json()["errors"][0]["message"] == (
        "The gateway is shutting down and cut this function call off; the function may "
        "have run already, so calling it again may run it twice."
    )
    assert "cut off by the shutdown" in log
    assert "Exception in ASGI application" not in log
    assert "Traceback" not in log
    assert "timeout graceful shutdown exceeded" not in log  # uvicorn's ERROR line (QA)


async def test_a_stuck_call_and_a_stuck_delivery_share_one_shutdown_budget(
    tmp_path: pathlib.Path, receiver: Receiver
):
    # QA: uvicorn waited --shutdown-timeout for the call, then the gateway waited as long
    # again for the worker's delivery: 6.3 s for a timeout of 3 (past docker stop's 10 s
    # SIGKILL with the default of 10).
    arrived = {"call": asyncio.Event(), "delivery": asyncio.Event()}

    def hung(kind: str) -> Any:
        def reply(_: Any) -> Reply:
            arrived[kind].set()
            return Reply(status=200, delay_s=8)

        return reply

    receiver.reply("/call", hung("call"))
    receiver.reply("/delivery", hung("delivery"))
    async with running_async(tmp_path / "data", "--shutdown-timeout", "3") as process:
        base = f"{process.config_url}/v1/spaces/default"
        async with httpx.AsyncClient(timeout=20) as client:
            for name in ("call", "delivery"):
                function = {
                    "functionId": name,
                    "type": "http",
                    "provider": {"url": receiver.url(f"/{name}")},
                }
                assert (await client.post(f"{base}/functions", json=function)).status_code == 201
            for event_type in ("http.request", "user.created"):
                created = await client.post(f"{base}/eventtypes", json={"name": event_type})
                assert created.status_code == 201
            subscriptions = [
                {
                    "type": "sync",
                    "eventType": "http.request",
                    "functionId": "call",
                    "path": "/slow",
                    "method": "GET",
                },
                {
                    "type": "async",
                    "eventType": "user.created",
                    "functionId": "delivery",
                    "path": "/",
                },
            ]
            for subscription in subscriptions:
                assert (
                    await client.post(f"{base}/subscriptions", json=subscription)
                ).status_code == 201
            emitted = await client.post(
                f"{process.events_url}/", json=cloudevent("e-stuck"), headers=STRUCTURED
            )
            assert emitted.status_code == 202
            request = asyncio.create_task(client.get(f"{process.events_url}/slow"))
            for event in arrived.values():
                await asyncio.wait_for(event.wait(), 10)
            assert process.proc is not None
            process.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(request, 20)
            assert await asyncio.to_thread(process.proc.wait, 30) == 0
        log = process.log()

    assert "cut off by the shutdown" in log
    # What was left of the 3 s when uvicorn's wait for the call was over: the 1 s floor.
    assert "the delivery worker did not drain within 1.0 s" in log, log


def test_sigterm_exits_with_code_0(tmp_path: pathlib.Path):
    with running(tmp_path / "data", "--shutdown-timeout", "3") as process:
        code = process.stop(signal.SIGTERM, timeout_s=8)

    assert code == 0


def test_sigterm_to_the_whole_process_group_stops_quietly(tmp_path: pathlib.Path):
    # QA: systemd's default KillMode signals the delivery worker too; it stopped on its
    # own, the gateway logged "exited with 0; restarting" and the worker a traceback.
    process = GatewayProcess(tmp_path / "data", "--shutdown-timeout", "3", new_session=True)
    process.start()
    try:
        deadline = time.monotonic() + 20
        while not (process.data_dir / "worker.sock").exists():
            assert time.monotonic() < deadline, process.log()
            time.sleep(0.02)  # another process's start-up: nothing to wait on but the file
        assert process.proc is not None
        os.killpg(process.proc.pid, signal.SIGTERM)
        code = process.proc.wait(timeout=30)
    finally:
        process.stop(signal.SIGKILL)
    log = process.log()
    assert code == 0, log
    assert "Traceback" not in log
    assert "restarting" not in log
    assert " ERROR " not in log


def test_an_open_log_stream_ends_on_sigterm_instead_of_holding_the_shutdown(
    tmp_path: pathlib.Path,
):
    # The shutdown timeout is longer than the test's: a stream that stayed open would make
    # the gateway wait it out, and the test would time out.
    with running(tmp_path / "data", "--shutdown-timeout", "120") as process:
        assert process.proc is not None
        function = {"functionId": "fn", "type": "http", "provider": {"url": "http://127.0.0.1:9/"}}
        created = httpx.post(f"{process.config_url}/v1/spaces/acme/functions", json=function)
        assert created.status_code == 201, created.text
        url = f"{process.config_url}/v1/spaces/acme/functions/fn/logs/stream"
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=90)) as response:
            assert response.status_code == 200
            chunks = response.iter_raw()
            next(chunks)  # the stream is open: its first keep-alive arrived
            process.proc.send_signal(signal.SIGTERM)
            rest = b"".join(chunks)  # returns only when the gateway ends the response
        code = process.stop(signal.SIGTERM, timeout_s=30)

    assert b"data:" not in rest
    assert code == 0


# -- restart ---------------------------------------------------------------------------------


async def test_configuration_survives_a_restart_on_the_same_data_dir(
    tmp_path: pathlib.Path, receiver: Receiver
):
    data_dir = tmp_path / "data"
    function = {"functionId": "crm", "type": "http", "provider": {"url": receiver.url("/crm")}}
    event_type = {"name": "user.created"}
    subscription = {
        "type": "async",
        "eventType": "user.created",
        "functionId": "crm",
        "path": "/acme",
    }
    async with running_async(data_dir) as first:
        created = {
            "functions": await create(first.config_url, "acme", "functions", function),
            "eventTypes": await create(first.config_url, "acme", "eventtypes", event_type),
            "subscriptions": await create(first.config_url, "acme", "subscriptions", subscription),
        }

    async with running_async(data_dir) as second:
        async with httpx.AsyncClient(timeout=5) as client:
            listed = {
                key: (await client.get(f"{second.config_url}/v1/spaces/acme/{resource}")).json()
                for key, resource in [
                    ("functions", "functions"),
                    ("eventTypes", "eventtypes"),
                    ("subscriptions", "subscriptions"),
                ]
            }
            emitted = await client.post(
                second.events_url + "/acme", json=cloudevent("e-restart"), headers=STRUCTURED
            )
        [call] = await receiver.wait_for(1, "/crm")

    assert listed == {key: {key: [entity]} for key, entity in created.items()}
    assert emitted.status_code == 202
    assert call.json()["id"] == "e-restart"


# -- a port already in use -------------------------------------------------------------------


@pytest.mark.parametrize("taken", ["--events-port", "--config-port"])
def test_port_in_use_exits_non_zero_with_one_line_naming_it(tmp_path: pathlib.Path, taken: str):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        ports = {"--events-port": free_port(), "--config-port": free_port(), taken: port}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "eventgateway",
                "serve",
                *(item for pair in ports.items() for item in (pair[0], str(pair[1]))),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            timeout=30,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=False,
        )

    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert f"127.0.0.1:{port}" in line
    assert line.startswith("Error: ")


# -- bad input over a real socket ------------------------------------------------------------

BIG_HEADER = "a" * 100 * 1024


@pytest.mark.parametrize(
    ("api", "method", "path", "headers", "body", "status", "message"),
    [
        pytest.param(
            "events",
            "POST",
            "/acme/users",
            STRUCTURED,
            b'{"specversion":',
            400,
            "CloudEvent is not valid JSON",
            id="malformed structured JSON",
        ),
        pytest.param(
            "events",
            "POST",
            "/acme/users",
            {"Content-Type": "text/plain; =bad"},
            b"hello",
            400,
            "invalid Content-Type header 'text/plain; =bad'",
            id="unparsable Content-Type",
        ),
        pytest.param(
            "events",
            "POST",
            "/acme/users",
            {"X-Big": BIG_HEADER},
            b"hello",
            431,
            "the limit is 65536 bytes",
            id="100 KB header",
        ),
        pytest.param(
            "config",
            "POST",
            "/v1/spaces/a%20b/functions",
            {"Content-Type": "application/json"},
            b'{"functionId":"f","type":"http","provider":{"url":"http://127.0.0.1:1/"}}',
            400,
            "Field validation for 'Space' failed on the 'space' tag",
            id="invalid space on create",
        ),
        pytest.param(
            "config",
            "GET",
            "/v1/spaces/no-such-space/functions/crm",
            {},
            b"",
            404,
            'Function "crm" not found.',
            id="unknown space on read",
        ),
        pytest.param(
            "config",
            "POST",
            "/v1/spaces/bad-input/subscriptions",
            {"Content-Type": "application/json"},
            b'{"type":"sync","eventType":"http.request","functionId":"f",'
            b'"method":"GET","path":"/bad-input/*rest/more"}',
            400,
            "wildcard must be the last parameter",
            id="invalid subscription path",
        ),
    ],
)
def test_bad_input_is_a_4xx_with_the_errors_shape(
    gateway: GatewayProcess,
    api: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    message: str,
):
    base = gateway.events_url if api == "events" else gateway.config_url
    with httpx.Client(timeout=5) as client:
        response = client.request(method, base + path, headers=headers, content=body)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert list(error) == ["message"]
    assert message in error["message"]


async def test_sync_replies_that_http_cannot_carry_never_break_the_connection(
    gateway: GatewayProcess, receiver: Receiver
):
    # Real uvicorn framing: one keep-alive connection carries every answer in turn.
    replies = {
        "no-content": {"statusCode": 204, "body": "not empty", "headers": {"X-A": "1"}},
        "framing": {"headers": {"Content-Length": "999", "Date": "then"}, "body": "hi"},
        "status-999": {"statusCode": 999},
        "status-101": {"statusCode": 101},
        "bad-name": {"headers": {"bad header": "v"}},
        "split": {"headers": {"x-a": "a\r\nx-injected: 1"}},
    }
    url = gateway.config_url
    await create(url, "wire", "eventtypes", {"name": "http.request"})
    for name, reply in replies.items():
        receiver.reply_json(f"/{name}", reply)
        await create(
            url,
            "wire",
            "functions",
            {"functionId": name, "type": "http", "provider": {"url": receiver.url(f"/{name}")}},
        )
        await create(
            url,
            "wire",
            "subscriptions",
            {
                "type": "sync",
                "eventType": "http.request",
                "functionId": name,
                "method": "GET",
                "path": f"/wire/{name}",
            },
        )
    answers = {}
    async with httpx.AsyncClient(base_url=gateway.events_url, timeout=5) as client:
        for name in [*replies, "no-content"]:
            answers[name] = await client.get(f"/wire/{name}")

    no_content = answers["no-content"]
    assert (no_content.status_code, no_content.content) == (204, b"")
    assert no_content.headers["x-a"] == "1"
    assert "content-length" not in no_content.headers
    framing = answers["framing"]
    assert (framing.status_code, framing.content) == (200, b"hi")
    assert framing.headers.get_list("content-length") == ["2"]
    assert framing.headers.get_list("date") != ["then"]
    for name in ("status-999", "status-101", "bad-name", "split"):
        assert answers[name].status_code == 500, name
        assert answers[name].json() == {"errors": [{"message": "HTTP response object malformed"}]}
    assert "Traceback" not in gateway.log()


# -- metrics and OpenAPI ---------------------------------------------------------------------


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric ``name``, keyed by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_metrics_count_config_requests_and_functions_per_space(gateway: GatewayProcess):
    space = "metrics-space"
    with httpx.Client(base_url=gateway.config_url, timeout=5) as client:
        for function_id in ("one", "two"):
            created = client.post(
                f"/v1/spaces/{space}/functions",
                json={
                    "functionId": function_id,
                    "type": "http",
                    "provider": {"url": "http://127.0.0.1:1/"},
                },
            )
            assert created.status_code == 201
        assert client.get(f"/v1/spaces/{space}/functions/one").status_code == 200
        assert client.get(f"/v1/spaces/{space}/functions").status_code == 200
        metrics = client.get("/v1/metrics")

    assert metrics.status_code == 200
    requests = samples(metrics.text, "eventgateway_config_requests_total")
    by_operation = {
        dict(labels)["operation"]: value
        for labels, value in requests.items()
        if dict(labels)["space"] == space
    }
    assert by_operation == {"create": 2.0, "get": 1.0, "list": 1.0}
    functions = samples(metrics.text, "eventgateway_functions_total")
    assert functions[(("space", space),)] == 2.0


def test_openapi_document_is_json_with_openapi_and_paths(gateway: GatewayProcess):
    with httpx.Client(timeout=5) as client:
        response = client.get(gateway.config_url + "/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/spaces/{space}/functions" in document["paths"]
    assert "/v1/status" in document["paths"]


async def test_memory_store_delivers_with_a_data_dir_that_does_not_exist_yet(
    tmp_path: pathlib.Path, receiver: Receiver
):
    # The delivery worker's socket lives in the data dir, which the memory store never
    # creates: the worker must make it rather than crash-loop with accepted events queued.
    missing = tmp_path / "not" / "yet"
    async with running_async(
        tmp_path / "data", "--store", "memory://", "--data-dir", str(missing)
    ) as process:
        await subscribe_function(process.config_url, receiver.url("/crm"), "crm")
        async with httpx.AsyncClient(timeout=5) as client:
            emitted = await client.post(
                process.events_url + "/acme", json=cloudevent("e-memory"), headers=STRUCTURED
            )
        [call] = await receiver.wait_for(1, "/crm")

    assert emitted.status_code == 202
    assert call.json()["id"] == "e-memory"
    assert "exited with" not in process.log()


async def test_a_second_gateway_on_the_same_data_dir_is_refused_and_the_first_keeps_delivering(
    tmp_path: pathlib.Path, receiver: Receiver
):
    async with running_async(tmp_path / "data") as first:
        refused = await asyncio.to_thread(GatewayProcess(tmp_path / "data").start_refused)
        await subscribe_function(first.config_url, receiver.url("/crm"), "crm")
        async with httpx.AsyncClient(timeout=5) as client:
            emitted = await client.post(
                first.events_url + "/acme", json=cloudevent("e-first"), headers=STRUCTURED
            )
        [call] = await receiver.wait_for(1, "/crm")

    assert "exited with 2" in refused  # refused before uvicorn starts: one line
    assert refused.count(f"is in use by another gateway (pid {first.proc.pid})") == 1
    assert "Application startup failed" not in refused
    assert "Traceback" not in refused
    assert emitted.status_code == 202
    assert call.json()["id"] == "e-first"


def test_an_unreachable_nats_store_fails_the_start_in_one_line_without_a_traceback(
    tmp_path: pathlib.Path,
):
    nobody = f"nats://127.0.0.1:{free_port()}?prefix=egtest-nobody"
    refused = GatewayProcess(tmp_path / "data", "--store", nobody).start_refused()

    assert "exited with 3" in refused  # uvicorn's start-up failure
    assert refused.count("no server answered (is nats-server running") == 1
    assert "Traceback" not in refused


# -- system events ---------------------------------------------------------------------------


async def test_event_received_system_event_reaches_its_subscriber(
    tmp_path: pathlib.Path, receiver: Receiver
):
    async with running_async(tmp_path / "data") as process:
        url = process.config_url
        await create(
            url,
            "acme",
            "functions",
            {"functionId": "audit", "type": "http", "provider": {"url": receiver.url("/audit")}},
        )
        await create(url, "acme", "eventtypes", {"name": "eventgateway.event.received"})
        await create(
            url,
            "acme",
            "subscriptions",
            {
                "type": "async",
                "eventType": "eventgateway.event.received",
                "functionId": "audit",
                "method": "POST",
                "path": "/",
            },
        )
        async with httpx.AsyncClient(timeout=5) as client:
            emitted = await client.post(
                process.events_url + "/acme/users",
                json=cloudevent("e-watched"),
                headers={**STRUCTURED, "X-Trace": "t-1"},
            )
        [call] = await receiver.wait_for(1, "/audit")

    assert emitted.status_code == 202
    system = call.json()
    assert system["eventType"] == "eventgateway.event.received"
    assert system["cloudEventsVersion"] == "0.1"
    assert system["contentType"] == "application/json"
    data = system["data"]
    assert set(data) == {"path", "event", "headers"}
    assert data["path"] == "/acme/users"
    assert (data["event"]["id"], data["event"]["type"]) == ("e-watched", "user.created")
    headers = {name.lower(): value for name, value in data["headers"].items()}
    assert headers["x-trace"] == "t-1"
    assert headers["content-type"] == "application/cloudevents+json"
