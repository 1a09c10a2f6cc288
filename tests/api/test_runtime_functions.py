"""Functions the gateway runs itself, end to end: upload a bundle, register, emit, read logs."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.runtime.conftest import process_exists, wait_until
from tests.support.inprocess import InProcess, in_process_gateway

CRM_HANDLER = """
def handler(event, context):
    user = event["data"]
    print("Saving user to CRM:")
    print(user)
    return {"message": "success"}
"""

USERS_HANDLER = """
import json

def get_user(event, context):
    user_id = event["data"]["params"]["id"]
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"id": user_id, "by": context.function_name})}

def broken(event, context):
    raise ValueError("no such user")
"""


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


async def logs_until(
    gw: InProcess, function_id: str, predicate, timeout_s: float = 20
) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = await gw.config.get(f"/v1/spaces/acme/functions/{function_id}/logs")
        assert response.status_code == 200, response.text
        lines = response.json()["logs"]
        if predicate(lines):
            return list(lines)
        assert time.monotonic() < deadline, lines
        await asyncio.sleep(0.05)  # logs are written asynchronously; poll with a deadline


async def test_walkthrough_crm_handler_runs_on_an_async_event_with_lambda_style_logs(gw):
    bundle_id = await gw.upload_bundle({"handler.py": CRM_HANDLER})
    await gw.create(
        "functions",
        {
            "functionId": "addUserToCRM",
            "type": "python",
            "provider": {"bundle": bundle_id, "handler": "handler.handler"},
        },
    )
    await gw.event_type("user.created")
    await gw.subscribe(
        type="async", eventType="user.created", functionId="addUserToCRM", path="/acme"
    )
    user = {"username": "ada", "email": "ada@example.com"}
    response = await gw.events.post(
        "/acme",
        json={
            "specversion": "1.0",
            "id": "u1",
            "source": "/users",
            "type": "user.created",
            "data": user,
        },
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 202
    lines = await logs_until(
        gw, "addUserToCRM", lambda ls: any(line["message"].startswith("REPORT") for line in ls)
    )
    messages = [line["message"] for line in lines]
    request_id = lines[0]["requestId"]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[1:3] == ["Saving user to CRM:", str(user)]
    assert messages[3] == f"END RequestId: {request_id}"
    assert messages[4].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tMemory Size: 1024 MB\tMax Memory Used: " in messages[4]
    assert "Init Duration: " in messages[4]
    view = (await gw.config.get("/v1/spaces/acme/events/u1")).json()
    assert view["state"] == "delivered"


async def test_python_handler_serves_a_sync_http_route_and_errors_become_500(gw):
    bundle_id = await gw.upload_bundle({"users.py": USERS_HANDLER})
    for name, handler in (("getUser", "users.get_user"), ("broken", "users.broken")):
        await gw.create(
            "functions",
            {
                "functionId": name,
                "type": "python",
                "provider": {"bundle": bundle_id, "handler": handler},
            },
        )
    await gw.event_type("http.request")
    await gw.subscribe(
        type="sync",
        eventType="http.request",
        functionId="getUser",
        path="/acme/users/:id",
        method="GET",
    )
    await gw.subscribe(
        type="sync",
        eventType="http.request",
        functionId="broken",
        path="/acme/broken",
        method="GET",
    )
    ok = await gw.events.get("/acme/users/42")
    failed = await gw.events.get("/acme/broken")
    assert ok.status_code == 200
    assert ok.json() == {"id": "42", "by": "getUser"}
    assert failed.status_code == 500
    assert failed.json() == {"errors": [{"message": "Function call failed. Please check logs."}]}


async def test_function_with_an_unknown_bundle_is_refused(gw):
    response = await gw.config.post(
        "/v1/spaces/acme/functions",
        json={
            "functionId": "f",
            "type": "python",
            "provider": {"bundle": "b" * 64, "handler": "h.h"},
        },
    )
    assert response.status_code == 400
    assert "has not been uploaded" in response.json()["errors"][0]["message"]


async def test_nodejs_function_without_node_is_refused_with_a_clear_message(gw, monkeypatch):
    bundle_id = await gw.upload_bundle({"index.js": "module.exports.handler = async () => ({})"})
    monkeypatch.setattr(
        type(gw.gateway.runtime.functions), "node_available", property(lambda self: False)
    )
    response = await gw.config.post(
        "/v1/spaces/acme/functions",
        json={
            "functionId": "f",
            "type": "nodejs",
            "provider": {"bundle": bundle_id, "handler": "index.handler"},
        },
    )
    assert response.status_code == 400
    assert "Node.js is required" in response.json()["errors"][0]["message"]


PID_HANDLER = """
import os

def handler(event, context):
    return {"pid": os.getpid()}
"""


async def test_deleting_a_function_stops_its_warm_workers(gw):
    # QA: after `eg remove` its warm workers ran on for the 5-minute idle time.
    bundle_id = await gw.upload_bundle({"pid.py": PID_HANDLER})
    provider = {"bundle": bundle_id, "handler": "pid.handler"}
    await gw.create("functions", {"functionId": "pid", "type": "python", "provider": provider})
    invoked = await gw.config.post("/v1/spaces/acme/functions/pid/invoke", json={})
    assert invoked.status_code == 200, invoked.text
    pid = invoked.json()["result"]["pid"]

    deleted = await gw.config.delete("/v1/spaces/acme/functions/pid")

    assert deleted.status_code == 204
    await wait_until(lambda: not process_exists(pid))
