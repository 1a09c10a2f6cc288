"""`eg events replay` against a real `eg serve` and a real receiver playing the function."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from tests.cli.kit import clean_workdir
from tests.support.process import GatewayProcess
from tests.support.receiver import Receiver

SPACE = "replays"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("replay") / "data").start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    return clean_workdir(monkeypatch, tmp_path)


async def eg(gateway: GatewayProcess, *args: str) -> Result:
    """`eg …` in a thread, so the receiver keeps serving on this loop meanwhile."""
    env = {
        "EG_URL": gateway.events_url,
        "EG_CONFIG_URL": gateway.config_url,
        "EG_SPACE": SPACE,
    }
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def ids_received(receiver: Receiver, count: int) -> list[str]:
    await receiver.wait_for(count, "/crm")
    return [call.json()["id"] for call in receiver.calls_to("/crm")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name the events: EVENT_ID ..., or --since TIME"),
        (["e-1", "--since", "1m"], "(only one of them)"),
        (["--until", "1m"], "--until needs --since"),
    ],
)
def test_a_replay_needs_exactly_one_selection(args, message):
    result = CliRunner().invoke(cli, ["events", "replay", *args], env={"EG_URL": "http://x:1"})

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_a_bad_window_time_is_a_usage_error_naming_the_option(option):
    args = ["events", "replay", "--since", "10m", option, "later"]
    result = CliRunner().invoke(cli, args, env={"EG_URL": "http://127.0.0.1:9"})

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(
        f"Error: Invalid value for '{option}': {option[2:]} 'later' is not a time: "
    )


async def test_replay_by_id_and_window_reports_counts_and_refusals(
    gateway: GatewayProcess, receiver: Receiver
) -> None:
    async with httpx.AsyncClient(base_url=f"{gateway.config_url}/v1/spaces/{SPACE}") as config:
        function = {"functionId": "crm", "type": "http", "provider": {"url": receiver.url("/crm")}}
        subscription = {"type": "async", "eventType": "user.created", "functionId": "crm"}
        for resource, body in [
            ("functions", function),
            ("eventtypes", {"name": "user.created"}),
            ("subscriptions", {**subscription, "path": f"/{SPACE}/"}),
        ]:
            assert (await config.post(f"/{resource}", json=body)).status_code == 201
        emitted = await eg(gateway, "emit", "--event", "user.created", "--id", "ev-1")
        assert emitted.exit_code == 0, emitted.output
        assert await ids_received(receiver, 1) == ["ev-1"]

        by_id = await eg(gateway, "events", "replay", "ev-1")
        assert (by_id.exit_code, by_id.stdout) == (0, "Replayed 1 delivery of 1 event.\n")
        assert await ids_received(receiver, 2) == ["ev-1", "ev-1"]
        shown = await eg(gateway, "events", "get", "ev-1")
        header = next(line.split() for line in shown.stdout.splitlines() if "deliveryId" in line)
        assert header[-1] == "replayOf"

        by_window = await eg(gateway, "events", "replay", "--since", "10m", "-o", "json")
        assert by_window.exit_code == 0, by_window.output
        assert json.loads(by_window.stdout) == {
            "replayed": 1,
            "events": 1,
            "skipped": {"deletedSubscription": 0, "atMostOnce": 0, "filtered": 0},
        }
        assert await ids_received(receiver, 3) == ["ev-1"] * 3

        missing = await eg(gateway, "events", "replay", "ev-1", "nope")
        assert (missing.exit_code, missing.stdout) == (1, "")
        assert missing.stderr == (
            "Error: Events not found in space \"replays\": 'nope' (never accepted there, or "
            "removed by retention); nothing was replayed.\n"
        )

        [created] = (await config.get("/subscriptions")).json()["subscriptions"]
        url = f"/subscriptions/{created['subscriptionId']}"
        elsewhere = {"source": ["nowhere"]}
        body = {**subscription, "path": f"/{SPACE}/", "filter": elsewhere}
        assert (await config.put(url, json=body)).status_code == 200
        filtered = await eg(gateway, "events", "replay", "ev-1")
        assert (filtered.exit_code, filtered.stdout) == (
            0,
            "Replayed 0 deliveries of 1 event.\n"
            "Skipped 1 to subscriptions whose filter does not match now.\n",
        )
        await config.delete(url)
        skipped = await eg(gateway, "events", "replay", "ev-1")
        assert (skipped.exit_code, skipped.stdout) == (
            0,
            "Replayed 0 deliveries of 1 event.\nSkipped 1 to subscriptions removed since.\n",
        )
    assert len(receiver.calls_to("/crm")) == 3
