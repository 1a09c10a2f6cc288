"""`eg emit` against a real `eg serve`: what the walkthrough's step 3 prints, and its failures."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from eventgateway.cli.main import cli
from tests.cli.kit import clean_workdir
from tests.support.ports import free_port
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

WALKTHROUGH_LINES = [
    "Event emitted: user.created",
    "Run `eg logs -f <functionName>` to verify your subscribed function was triggered.",
]
USER = {"username": "ada", "firstname": "Ada", "company": "Test Corp, Inc."}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("emit") / "data").start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """No serverless.yml and no EG_* variables of the machine running the tests."""
    return clean_workdir(monkeypatch, tmp_path)


def env_for(gateway: GatewayProcess, space: str) -> dict[str, str]:
    return {"EG_URL": gateway.events_url, "EG_CONFIG_URL": gateway.config_url, "EG_SPACE": space}


def eg(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `eg` in a subprocess, in the current directory."""
    return subprocess.run(
        [sys.executable, "-m", "eventgateway", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def eg_async(env: dict[str, str], *args: str, stdin: str | None = None):
    # In a thread: the receiver answers on this test's event loop meanwhile.
    return await asyncio.to_thread(eg, env, *args, stdin=stdin)


def create(gateway: GatewayProcess, space: str, resource: str, body: dict) -> None:
    response = httpx.post(
        f"{gateway.config_url}/v1/spaces/{space}/{resource}", json=body, timeout=10
    )
    assert response.status_code == 201, response.text


def subscribe_receiver(
    gateway: GatewayProcess, receiver: Receiver, space: str, event_type: str, **subscription
) -> str:
    path = f"/{space}/fn"
    create(
        gateway,
        space,
        "functions",
        {"functionId": "fn", "type": "http", "provider": {"url": receiver.url(path)}},
    )
    create(gateway, space, "eventtypes", {"name": event_type})
    body = {"type": "async", "eventType": event_type, "functionId": "fn", "path": f"/{space}/"}
    create(gateway, space, "subscriptions", {**body, **subscription})
    return path


async def test_emit_prints_the_walkthrough_lines_and_the_function_gets_the_event(gateway, receiver):
    path = subscribe_receiver(gateway, receiver, "walk", "user.created")

    done = await eg_async(
        env_for(gateway, "walk"), "emit", "--event", "user.created", "--data", json.dumps(USER)
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == WALKTHROUGH_LINES
    [call] = await receiver.wait_for(1, path)
    event = call.json()
    assert (event["type"], event["data"]) == ("user.created", USER)


async def test_inside_a_service_directory_serverless_yml_names_the_gateway_and_space(
    gateway, receiver, workdir
):
    path = subscribe_receiver(gateway, receiver, "from-yml", "user.created")
    (workdir / "serverless.yml").write_text(
        "service: crm-service\n"
        "custom:\n"
        "  eventgateway:\n"
        f"    url: ${{env:CRM_GATEWAY, '{gateway.events_url}'}}\n"
        "    space: from-yml\n",
        encoding="utf-8",
    )

    done = await eg_async({}, "emit", "--event", "user.created", "--data", json.dumps(USER))

    assert done.stdout.splitlines() == WALKTHROUGH_LINES, done.stderr
    [call] = await receiver.wait_for(1, path)
    assert call.json()["data"] == USER


async def test_data_from_a_file_and_from_standard_input(gateway, receiver, workdir):
    path = subscribe_receiver(gateway, receiver, "forms", "user.created")
    (workdir / "event.json").write_text(json.dumps(USER), encoding="utf-8")
    env = env_for(gateway, "forms")

    from_file = await eg_async(env, "emit", "--event", "user.created", "--data", "@event.json")
    from_stdin = await eg_async(
        env, "emit", "--event", "user.created", "--data", "-", stdin='{"from": "stdin"}'
    )

    assert from_file.stdout.splitlines() == WALKTHROUGH_LINES
    assert from_stdin.stdout.splitlines() == WALKTHROUGH_LINES
    calls = await receiver.wait_for(2, path)
    assert sorted(json.dumps(call.json()["data"]) for call in calls) == sorted(
        [json.dumps(USER), json.dumps({"from": "stdin"})]
    )


@pytest.mark.parametrize("mode", ["--binary", "--legacy"])
async def test_binary_and_legacy_modes_are_delivered_too(gateway, receiver, mode):
    space = mode.strip("-")
    path = subscribe_receiver(gateway, receiver, space, "user.created")

    done = await eg_async(
        env_for(gateway, space), "emit", mode, "--event", "user.created", "--data", '{"a": 1}'
    )

    assert done.stdout.splitlines() == WALKTHROUGH_LINES, done.stderr
    [call] = await receiver.wait_for(1, path)
    assert call.json()["data"] == {"a": 1}


async def test_a_repeated_source_and_id_says_it_was_not_delivered_again(gateway, receiver):
    path = subscribe_receiver(gateway, receiver, "dup", "user.created")
    args = ("emit", "--event", "user.created", "--data", "{}", "--source", "/t", "--id", "e-1")

    first = await eg_async(env_for(gateway, "dup"), *args)
    second = await eg_async(env_for(gateway, "dup"), *args)

    assert first.stdout.splitlines() == WALKTHROUGH_LINES
    assert second.stdout.splitlines()[:2] == WALKTHROUGH_LINES
    [duplicate_line] = second.stdout.splitlines()[2:]
    assert "duplicate" in duplicate_line
    assert "not delivered again" in duplicate_line
    assert len(await receiver.wait_for(1, path)) == 1


async def test_a_sync_route_prints_the_status_and_the_response(gateway, receiver):
    path = "/sync/users"
    create(
        gateway,
        "sync",
        "functions",
        {"functionId": "users", "type": "http", "provider": {"url": receiver.url(path)}},
    )
    create(gateway, "sync", "eventtypes", {"name": "user.lookup"})
    create(
        gateway,
        "sync",
        "subscriptions",
        {
            "type": "sync",
            "eventType": "user.lookup",
            "functionId": "users",
            "path": "/sync/users",
            "method": "POST",
        },
    )
    receiver.reply_json(
        path,
        {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": '{"id": 42}'},
    )
    env = env_for(gateway, "sync")
    args = ("emit", "--event", "user.lookup", "--path", "/sync/users", "--data", "{}")

    text = await eg_async(env, *args)
    as_json = await eg_async(env, *args, "--output", "json")

    assert text.stdout.splitlines() == ["Status: 201", '{"id": 42}'], text.stderr
    shown = json.loads(as_json.stdout)
    assert (shown["status"], shown["body"]) == (201, {"id": 42})
    assert shown["headers"]["content-type"] == "application/json"


def test_json_output_of_an_accepted_event(gateway):
    result = CliRunner().invoke(
        cli,
        ["emit", "--event", "user.created", "--data", "1", "-o", "json"],
        env=env_for(gateway, "nobody"),
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"event": "user.created", "status": 202, "duplicate": False}


@pytest.mark.parametrize(
    ("data", "starts"),
    [
        ("{not json", "Error: Invalid value for '--data': not JSON ("),
        ("@missing.json", "Error: Invalid value for '--data': @missing.json: no such file: "),
        ("-", "Error: Invalid value for '--data': - (standard input) is not JSON ("),
    ],
)
def test_bad_data_is_a_usage_error_naming_data(data, starts):
    # QA: exit status 1 here, 2 for every other bad option value (click's usage errors).
    result = CliRunner().invoke(cli, ["emit", "--event", "x.y", "--data", data], input="nope")

    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: ")
    assert result.stderr.splitlines()[-1].startswith(starts)
    assert result.stdout == ""


def test_binary_and_legacy_exclude_each_other():
    result = CliRunner().invoke(cli, ["emit", "--event", "x.y", "--binary", "--legacy"])

    assert result.exit_code == 1
    assert result.stderr == "Error: --binary and --legacy exclude each other: choose one\n"


def test_an_unreachable_gateway_is_one_line_with_a_hint_and_exit_1():
    url = f"http://127.0.0.1:{free_port()}"

    done = eg({"EG_URL": url}, "emit", "--event", "user.created", "--data", "{}")

    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"Error: cannot reach the gateway at {url}: ")
    assert "`eg serve`" in line


def test_debug_shows_the_traceback_before_the_error_line():
    url = f"http://127.0.0.1:{free_port()}"

    done = eg({"EG_URL": url}, "emit", "--event", "user.created", "--debug")

    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"Error: cannot reach the gateway at {url}")
