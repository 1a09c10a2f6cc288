"""A reader that goes away (`eg logs f | head -1`) is not a gateway error: `eg` stops
printing and exits 141, and `eg deploy` still applies its whole plan first."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.kit import clean_workdir
from tests.support.ports import free_port
from tests.support.process import GatewayProcess

FUNCTIONS = [f"f{index}" for index in range(6)]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("closed-output") / "data").start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    return clean_workdir(monkeypatch, tmp_path)


def eg_into_closed_pipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real `eg` writing into a pipe whose reader is already gone: its first write to
    standard output fails with EPIPE, as after `| head -1` has read its line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "eventgateway", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def env_for(gateway: GatewayProcess, space: str) -> dict[str, str]:
    return {"EG_URL": gateway.events_url, "EG_CONFIG_URL": gateway.config_url, "EG_SPACE": space}


def test_a_command_whose_reader_is_gone_stops_quietly_but_an_unreachable_gateway_is_said(
    gateway,
):
    body = {"functionId": "fn", "type": "http", "provider": {"url": "http://127.0.0.1:9/"}}
    created = httpx.post(f"{gateway.config_url}/v1/spaces/closed/functions", json=body)
    assert created.status_code == 201, created.text

    listed = eg_into_closed_pipe(env_for(gateway, "closed"), "functions", "ls")
    as_json = eg_into_closed_pipe(env_for(gateway, "closed"), "functions", "ls", "-o", "json")
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = eg_into_closed_pipe(
        {"EG_URL": nobody, "EG_CONFIG_URL": nobody, "EG_SPACE": "closed"}, "functions", "ls"
    )

    assert (listed.returncode, listed.stderr) == (141, "")
    assert (as_json.returncode, as_json.stderr) == (141, "")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith(f"Error: cannot reach the gateway at {nobody}: ")


def test_a_deploy_whose_reader_is_gone_applies_its_whole_plan(gateway, workdir):
    (workdir / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    functions = "".join(
        f"  {name}:\n    handler: handler.handler\n    events:\n"
        f"      - eventgateway:\n          event: ev.{name}\n"
        for name in FUNCTIONS
    )
    (workdir / "serverless.yml").write_text(
        "service: piped\n"
        "provider: {name: eventgateway, runtime: python3.11}\n"
        "custom:\n  eventgateway:\n"
        f"    url: {gateway.events_url}\n    configurationUrl: {gateway.config_url}\n"
        "    space: piped-deploy\n"
        f"functions:\n{functions}",
        encoding="utf-8",
    )

    done = eg_into_closed_pipe({}, "deploy")

    assert (done.returncode, done.stderr) == (141, "")
    space = f"{gateway.config_url}/v1/spaces/piped-deploy"
    deployed = httpx.get(f"{space}/functions").json()["functions"]
    subscriptions = httpx.get(f"{space}/subscriptions").json()["subscriptions"]
    assert sorted(item["functionId"] for item in deployed) == FUNCTIONS
    assert sorted(item["eventType"] for item in subscriptions) == [f"ev.{n}" for n in FUNCTIONS]
