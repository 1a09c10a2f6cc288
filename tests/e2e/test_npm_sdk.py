"""The original npm SDK 0.11.0, unchanged, against a real `eg serve` subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.npm]

DRIVER = pathlib.Path(__file__).parent / "npm" / "sdk_driver.js"
SDK_VERSION = "0.11.0"


@pytest.fixture(scope="session")
def sdk_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI for the SDK compatibility test")
        pytest.skip("node/npm not installed")
    cache = pathlib.Path(
        os.environ.get("EG_NPM_CACHE_DIR", pathlib.Path.home() / ".cache" / "eventgateway-tests")
    )
    target = cache / f"event-gateway-sdk-{SDK_VERSION}"
    if not (target / "node_modules" / "@serverless" / "event-gateway-sdk").exists():
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_text('{"name": "sdk-compat", "private": true}')
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                f"@serverless/event-gateway-sdk@{SDK_VERSION}",
            ],
            cwd=target,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


async def test_original_sdk_configures_emits_and_reads_back(
    sdk_dir: pathlib.Path, tmp_path: pathlib.Path, receiver: Receiver
):
    receiver.reply_json(
        "/lookup",
        {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": '{"found":true}',
        },
    )
    gateway = GatewayProcess(tmp_path / "data")
    await asyncio.to_thread(gateway.start)
    try:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            gateway.events_url,
            gateway.config_url,
            "acme-crm",
            receiver.url(""),
            cwd=sdk_dir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(sdk_dir / "node_modules")},
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr.decode()
        r = json.loads(stdout)
        assert r["subscribeSpaceRoot"]["value"]["path"] == "/acme-crm/"
        assert r["emitShorthand"] == {"ok": True, "value": {"status": 202, "body": ""}}
        await receiver.wait_for(2, "/crm")
    finally:
        await asyncio.to_thread(gateway.stop)

    assert r["createFunction"] == {
        "ok": True,
        "value": {
            "space": "acme-crm",
            "functionId": "crm-dev-addUser",
            "type": "http",
            "provider": {"url": receiver.url("/crm")},
            "metadata": {"service": "crm", "stage": "dev"},
        },
    }
    assert not r["createFunctionDuplicate"]["ok"]
    assert 'Function "crm-dev-addUser" already registered.' in r["createFunctionDuplicate"]["error"]
    assert "already exists" in r["createEventTypeDuplicate"]["error"]
    assert r["subscribeAsync"]["value"]["subscriptionId"]
    assert "already exists" in r["subscribeAsyncDuplicate"]["error"]
    assert r["subscribeSync"]["value"]["method"] == "POST"
    assert r["createCORS"]["value"]["corsId"] == "POST%2Facme-crm%2Flookup"
    assert sorted(f["functionId"] for f in r["listFunctions"]["value"]) == [
        "crm-dev-addUser",
        "crm-dev-lookup",
    ]
    assert [f["functionId"] for f in r["listFunctionsFiltered"]["value"]] == [
        "crm-dev-lookup",
        "crm-dev-addUser",
    ]
    assert sorted(e["name"] for e in r["listEventTypes"]["value"]) == [
        "user.created",
        "user.lookup",
    ]
    assert [s["eventType"] for s in r["listSubscriptions"]["value"]] == ["user.created"]
    assert r["emitAsync"]["value"] == {"status": 202, "body": ""}
    assert r["emitSync"]["value"]["status"] == 200
    assert r["emitSync"]["value"]["body"] == '{"found":true}'
    assert r["emitSync"]["value"]["contentType"] == "application/json"
    assert not r["emitReserved"]["ok"]
    assert r["updateFunction"]["value"]["provider"] == {"url": receiver.url("/crm2")}
    assert r["updateEventType"]["value"]["metadata"] == {"service": "crm", "stage": "prod"}
    assert r["updateCORS"]["value"]["allowedOrigins"] == ["http://app.test"]
    assert "subscribed" in r["deleteFunctionInUse"]["error"]
    assert r["unsubscribe"] == {"ok": True, "value": 0}
    assert r["deleteCORS"]["ok"]
    assert r["deleteFunction"]["ok"]
    assert r["deleteEventType"]["ok"]
    assert r["listAfter"]["value"] == {
        "functions": ["crm-dev-lookup"],
        "eventTypes": ["user.lookup"],
        "cors": [],
    }
    by_data = {call.json()["data"]["username"]: call.json() for call in receiver.calls_to("/crm")}
    assert by_data.keys() == {"ada", "grace"}
    delivered = by_data["ada"]
    assert delivered["eventID"] == "sdk-1"
    assert delivered["data"] == {"username": "ada", "email": "ada@example.com"}
    # walkthrough.md step 4: new SDK({url: <events url>/<space>, space}).emit({event, data})
    shorthand = by_data["grace"]
    assert shorthand["specversion"] == "1.0"
    assert shorthand["type"] == "user.created"
    assert shorthand["source"] == "/eventgateway/sdk"
    assert shorthand["data"] == {"username": "grace", "email": "grace@example.com"}
