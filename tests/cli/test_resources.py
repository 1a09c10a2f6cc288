"""`eg functions|subscriptions|event-types|cors|events|dead-letters` against a real gateway."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from eventgateway.cli.main import cli
from eventgateway.cli.resources import function_target, key
from eventgateway.sdk.sync import EventGateway
from tests.cli.kit import clean_workdir
from tests.support.ports import free_port
from tests.support.process import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("resources") / "data").start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    return clean_workdir(monkeypatch, tmp_path)


class Space:
    """One space of the gateway: set up through the API, inspected through `eg`."""

    def __init__(self, gateway: GatewayProcess, name: str) -> None:
        self.gateway = gateway
        self.name = name

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.gateway.config_url}/v1/spaces/{self.name}/{resource}", json=body, timeout=10
        )
        assert response.status_code == 201, response.text
        return response.json()

    def api(self, path: str) -> Any:
        response = httpx.get(f"{self.gateway.config_url}/v1/spaces/{self.name}/{path}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def eg(self, *args: str) -> Result:
        env = {
            "EG_URL": self.gateway.events_url,
            "EG_CONFIG_URL": self.gateway.config_url,
            "EG_SPACE": self.name,
        }
        return CliRunner().invoke(cli, list(args), env=env)

    def ok(self, *args: str) -> str:
        result = self.eg(*args)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        return result.stdout

    def rows(self, *args: str) -> list[list[str]]:
        """The cells of a table, split on whitespace (the values here have none)."""
        lines = self.ok(*args).splitlines()
        return [line.split() for line in lines if line.strip() and set(line.strip()) != {"─"}]


@pytest.fixture
def space(gateway: GatewayProcess, request: pytest.FixtureRequest) -> Space:
    return Space(
        gateway, request.node.name.split("[")[0].removeprefix("test_")[:40].replace("_", "-")
    )


def add_function(space: Space, function_id: str = "crm", url: str = "http://127.0.0.1:9/") -> None:
    space.create(
        "functions",
        {
            "functionId": function_id,
            "type": "http",
            "provider": {"url": url},
            "metadata": {"service": "crm-service"},
        },
    )


def test_functions_table_shows_id_type_target_and_service(space):
    add_function(space)

    rows = space.rows("functions", "ls")

    assert rows == [
        ["functionId", "type", "target", "service"],
        ["crm", "http", "http://127.0.0.1:9/", "crm-service"],
    ]


def test_functions_json_is_what_the_api_answered(space):
    add_function(space)

    listed = json.loads(space.ok("functions", "ls", "--output", "json"))
    shown = json.loads(space.ok("functions", "get", "crm", "-o", "json"))

    assert listed == space.api("functions")["functions"]
    assert shown == space.api("functions/crm")


def test_get_shows_every_field_and_rm_says_what_it_removed(space):
    add_function(space)

    fields = {row[0]: row[1:] for row in space.rows("functions", "get", "crm")}
    removed = space.ok("functions", "rm", "crm")
    again = space.eg("functions", "get", "crm")

    assert fields["functionId"] == ["crm"]
    assert fields["provider"] == ['{"url":"http://127.0.0.1:9/"}']
    assert removed == "Removed function crm.\n"
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: ")
    assert "crm" in again.stderr
    assert len(again.stderr.splitlines()) == 1


def test_metadata_filters_the_list(space):
    add_function(space)

    assert space.ok("functions", "ls", "-m", "service=other") == (
        f"No functions in space {space.name}.\n"
    )
    assert len(space.rows("functions", "ls", "--metadata", "service=crm-service")) == 2


def test_subscriptions_and_event_types_list_get_and_remove(space):
    add_function(space)
    space.create("eventtypes", {"name": "user.created"})
    subscription = space.create(
        "subscriptions",
        {"type": "async", "eventType": "user.created", "functionId": "crm", "path": "/x"},
    )
    subscription_id = subscription["subscriptionId"]

    subscriptions = space.rows("subscriptions", "ls")
    event_types = space.rows("event-types", "ls")
    shown = json.loads(space.ok("subscriptions", "get", subscription_id, "-o", "json"))

    assert subscriptions == [
        ["subscriptionId", "type", "eventType", "method", "path", "functionId"],
        [subscription_id, "async", "user.created", "POST", "/x", "crm"],
    ]
    assert event_types == [["name", "authorizerId"], ["user.created"]]
    assert shown == subscription
    assert space.ok("subscriptions", "rm", subscription_id) == (
        f"Removed subscription {subscription_id}.\n"
    )
    assert space.ok("event-types", "rm", "user.created") == "Removed event type user.created.\n"
    assert space.ok("event-types", "ls", "-o", "json") == "[]\n"


def test_cors_list_and_remove(space):
    cors = space.create("cors", {"method": "GET", "path": "/hello"})

    rows = space.rows("cors", "ls")
    removed = json.loads(space.ok("cors", "rm", cors["corsId"], "-o", "json"))

    assert rows[0] == ["corsId", "method", "path", "allowedOrigins", "allowedMethods"]
    assert rows[1][:3] == [cors["corsId"], "GET", "/hello"]
    assert removed == {"removed": "CORS configuration", "id": cors["corsId"]}


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # polling the gateway's delivery log: nothing to wait on


def dead_letters(space: Space) -> list[dict[str, Any]]:
    return json.loads(space.ok("dead-letters", "ls", "-o", "json"))


def test_events_and_dead_letters_list_show_redrive_and_purge(space):
    add_function(space, url=f"http://127.0.0.1:{free_port()}/")  # nothing listens: it fails
    space.create("eventtypes", {"name": "user.created"})
    subscription = space.create(
        "subscriptions",
        {
            "type": "async",
            "eventType": "user.created",
            "functionId": "crm",
            "path": f"/{space.name}/",
            "retryPolicy": {"maxAttempts": 1},
        },
    )
    space.ok("emit", "--event", "user.created", "--id", "ev-1", "--data", "{}")
    wait_for(lambda: len(dead_letters(space)) == 1)

    events = space.rows("events", "ls")
    event = space.rows("events", "get", "ev-1")
    [letter] = dead_letters(space)
    letters = space.rows("dead-letters", "ls", "--subscription", subscription["subscriptionId"])

    assert events[0] == ["id", "type", "state", "deliveries", "receivedAt"]
    assert events[1][:4] == ["ev-1", "user.created", "dead", "1"]
    assert ["state", "dead"] in event
    assert "deliveryId" in event[next(i for i, row in enumerate(event) if "deliveryId" in row)]
    # QA: the help promises each delivery's attempts; the table showed only their count.
    header = ["deliveryId", "attempt", "startedAt", "durationMs", "outcome", "status", "error"]
    attempts = event.index(header)
    assert event[attempts + 1][1] == "1"
    assert "failed" in event[attempts + 1]
    [sent] = json.loads(space.ok("events", "get", "ev-1", "-o", "json"))["deliveries"]
    measured = sent["attemptLog"][0]["durationMs"]
    assert event[attempts + 1][3] == f"{measured:.2f}"  # as REPORT lines show durations
    assert letters[0] == [
        "deadLetterId",
        "eventId",
        "subscriptionId",
        "attempts",
        "lastStatus",
        "reason",
    ]
    assert letters[1][:4] == [letter["deadLetterId"], "ev-1", subscription["subscriptionId"], "1"]

    assert space.ok("dead-letters", "redrive", "--id", letter["deadLetterId"]) == (
        "Redriven 1 dead letter.\n"
    )
    wait_for(lambda: len(dead_letters(space)) == 1)  # it fails again: dead again
    [again] = dead_letters(space)
    mixed = space.eg("dead-letters", "redrive", "--id", again["deadLetterId"], "--id", "nope")
    assert (mixed.exit_code, mixed.stdout) == (1, "Redriven 1 dead letter.\n")
    assert mixed.stderr == "Error: dead letter nope not found.\n"
    wait_for(lambda: len(dead_letters(space)) == 1)
    assert json.loads(space.ok("dead-letters", "purge", "--all", "-o", "json")) == {"purged": 1}
    assert dead_letters(space) == []


def test_events_get_rounds_durations_in_tables_only(monkeypatch):
    # QA: `durationMs 1.8573790000573354`; `eg logs` REPORT lines show 2 decimals.
    attempt = {"attempt": 1, "startedAt": "2026-11-26T18:00:00Z", "durationMs": 1.8573790000573354}
    delivery = {"deliveryId": "d-1", "state": "delivered", "attemptLog": [attempt]}
    event = {"id": "ev-1", "state": "delivered", "deliveries": [delivery]}
    monkeypatch.setattr(EventGateway, "get_event", lambda self, event_id: event)
    env = {"EG_URL": "http://127.0.0.1:9"}

    table = CliRunner().invoke(cli, ["events", "get", "ev-1"], env=env)
    as_json = CliRunner().invoke(cli, ["events", "get", "ev-1", "-o", "json"], env=env)

    assert table.exit_code == 0, table.output
    [row] = [line.split() for line in table.stdout.splitlines() if line.startswith("d-1 ")][-1:]
    assert row[:4] == ["d-1", "1", "2026-11-26T18:00:00Z", "1.86"]
    assert "1.857379" not in table.stdout
    assert json.loads(as_json.stdout) == event


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["redrive"], "name the dead letters: --id ID (repeatable), --subscription ID"),
        (["purge", "--id", "a", "--all"], "(only one of them)"),
        (["redrive", "--since", "1", "--all"], "(only one of them)"),
    ],
)
def test_redrive_and_purge_need_exactly_one_selection(space, args, message):
    result = space.eg("dead-letters", *args)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr


@pytest.mark.parametrize(("verb", "counted"), [("redrive", "redriven"), ("purge", "purged")])
def test_an_id_that_is_no_dead_letter_is_an_error(space, verb, counted):
    one = space.eg("dead-letters", verb, "--id", "999")
    two = space.eg("dead-letters", verb, "--id", "998", "--id", "999", "-o", "json")

    assert (one.exit_code, one.stdout) == (1, "")
    assert one.stderr == "Error: dead letter 999 not found.\n"
    assert two.exit_code == 1
    assert json.loads(two.stdout) == {counted: 0, "notFound": ["998", "999"]}
    assert two.stderr == "Error: dead letters 998, 999 not found.\n"


def test_column_getters_read_nested_values_and_function_targets():
    function = {"provider": {"handler": "handler.handler"}, "metadata": {"service": "s"}}

    assert key("metadata.service")(function) == "s"
    assert key("metadata.missing.deeper")(function) is None
    assert function_target(function) == "handler.handler"
    assert function_target({"provider": {"arn": "arn:aws:lambda:x"}}) == "arn:aws:lambda:x"
    assert function_target({"provider": {"region": "eu", "x": 1}}) == "eu"
    assert function_target({}) is None
