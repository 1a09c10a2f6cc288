"""shared/spec/walkthrough.md, replayed step by step with real processes.

`eg serve` runs as a subprocess; every `eg` command the walkthrough types runs as its own
subprocess in a copy of the example's directory, exactly as a person would run it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.process import GatewayProcess

pytestmark = pytest.mark.e2e

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
REPORT = re.compile(
    r"^REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 1024 MB\tMax Memory Used: \d+ MB"
)
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \(\+00:00\)\t(\S+)\t(.*)$")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("walkthrough") / "data", "--domain", "localhost"
    )
    process.start()
    yield process
    process.stop()


def service_copy(name: str, tmp_path: pathlib.Path) -> pathlib.Path:
    directory = tmp_path / name
    shutil.copytree(EXAMPLES / name, directory, ignore=shutil.ignore_patterns(".eventgateway"))
    return directory


def invocations(gateway: GatewayProcess, cwd: pathlib.Path, count: int) -> list[list[str]]:
    """`eg logs -f addUserToCRM` split per invocation, once ``count`` of them have a REPORT."""
    deadline = time.monotonic() + 60
    while True:
        lines = gateway.eg(cwd, "logs", "-f", "addUserToCRM").stdout.splitlines()
        groups: list[list[str]] = []
        for line in lines:
            if line.startswith("START RequestId: "):
                groups.append([])
            if groups:
                groups[-1].append(line)
        finished = [group for group in groups if REPORT.match(group[-1])]
        if len(finished) >= count:
            return finished
        assert time.monotonic() < deadline, lines
        time.sleep(0.2)  # polling the log store (written after the call): nothing to wait on


def check_invocation(lines: list[str], user_marker: str) -> None:
    """START / "Saving user to CRM:" / the user / END / REPORT, all of one request."""
    request_id = lines[0].removeprefix("START RequestId: ").split(" ")[0]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    saving = LOG_LINE.match(lines[1])
    assert saving is not None, lines
    assert saving.groups() == (request_id, "Saving user to CRM:")
    assert lines[2].startswith("{"), lines  # the user: a continuation line, no prefix
    assert user_marker in lines[2], lines
    assert lines[-2] == f"END RequestId: {request_id}"
    report = REPORT.match(lines[-1])
    assert report is not None
    assert report.group(1) == request_id


def test_crm_service_from_deploy_to_logs(gateway, tmp_path):
    crm = service_copy("crm-service", tmp_path)

    # 2. Deploy, then deploy again: nothing changes, and eg says so.
    first = gateway.eg(crm, "deploy").stdout
    assert "+ function" in first
    assert "addUserToCRM" in first
    assert "+ subscription" in first
    assert "user.created" in first
    assert "Deployed crm-service:" in first
    assert "No changes" in gateway.eg(crm, "deploy").stdout

    # 3. Emit a test event, read the function's logs.
    event = (crm / "event.json").read_text()
    emitted = gateway.eg(crm, "emit", "--event", "user.created", "--data", event)
    assert emitted.stdout == (
        "Event emitted: user.created\n"
        "Run `eg logs -f <functionName>` to verify your subscribed function was triggered.\n"
    )
    (only,) = invocations(gateway, crm, 1)
    check_invocation(only, "'company': 'Test Corp, Inc.'")

    # 4. Emit from application code (the SDK), then a second invocation shows up.
    env = {**os.environ, "EG_URL": gateway.events_url}
    done = subprocess.run(
        [sys.executable, "emit.py"], cwd=crm, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    _first_run, second_run = invocations(gateway, crm, 2)
    check_invocation(second_run, "'username': 'ada'")

    # `eg invoke` calls the function at once: its result, then the invocation's log lines.
    invoked = gateway.eg(crm, "invoke", "-f", "addUserToCRM", "--data", "@event.json").stdout
    result, _, tail = invoked.partition("\n\n")
    assert json.loads(result) == {"message": "success"}
    check_invocation(tail.splitlines(), "'company': 'Test Corp, Inc.'")

    # `eg info` shows what is deployed; `eg remove` takes it all away again.
    shown = gateway.eg(crm, "info").stdout
    assert "addUserToCRM" in shown
    assert "user.created" in shown
    removed = gateway.eg(crm, "remove").stdout
    assert "Removed crm-service" in removed
    assert httpx.get(f"{gateway.config_url}/v1/spaces/acme-crm/functions").json() == {
        "functions": []
    }


def test_hosted_style_space_urls_reach_the_space(gateway, tmp_path):
    crm = service_copy("crm-service", tmp_path)
    gateway.eg(crm, "deploy")
    host = f"acme-crm.localhost:{gateway.events_port}"
    body = {
        "specversion": "1.0",
        "id": "hosted-1",
        "source": "/t",
        "type": "user.created",
        "data": {"username": "hosted"},
    }
    response = httpx.post(
        f"{gateway.events_url}/",
        headers={"Host": host, "Content-Type": "application/cloudevents+json"},
        content=json.dumps(body),
    )
    assert response.status_code == 202
    (run,) = [group for group in invocations(gateway, crm, 1) if "'hosted'" in "".join(group)]
    check_invocation(run, "'username': 'hosted'")
    gateway.eg(crm, "remove")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_same_service_in_javascript(gateway, tmp_path):
    crm = service_copy("crm-service-node", tmp_path)
    gateway.eg(crm, "deploy")
    gateway.eg(crm, "emit", "--event", "user.created", "--data", "@event.json")
    deadline = time.monotonic() + 60
    while True:
        lines = gateway.eg(crm, "logs", "-f", "addUserToCRM").stdout.splitlines()
        if any(REPORT.match(line) for line in lines):
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.2)  # polling the log store: nothing to wait on
    text = "\n".join(lines)
    assert "Saving user to CRM:" in text
    assert "Test Corp, Inc." in text
    gateway.eg(crm, "remove")


def test_users_service_http_api(gateway, tmp_path):
    users = service_copy("users-service", tmp_path)
    deployed = gateway.eg(users, "deploy").stdout
    assert f"GET     {gateway.events_url}/acme-users/users/:id" in deployed

    base = f"{gateway.events_url}/acme-users/users"
    with httpx.Client(timeout=30) as client:
        found = client.get(f"{base}/1")
        assert found.status_code == 200, found.text
        assert found.headers["content-type"] == "application/json"
        assert found.json()["username"] == "ada"

        created = client.post(base, json={"username": "grace", "email": "grace@example.com"})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        assert client.get(f"{base}/{user_id}").json()["username"] == "grace"

        assert client.delete(f"{base}/{user_id}").status_code == 204
        missing = client.get(f"{base}/{user_id}")
        assert missing.status_code == 404
        assert missing.json() == {"error": f"no user {user_id}"}

        preflight = client.options(
            f"{base}/1",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers.get("access-control-allow-origin") in ("*", "https://app.example")
    gateway.eg(users, "remove")
