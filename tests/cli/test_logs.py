"""`eg logs`: Lambda-style lines of a Python function run by a real `eg serve`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator

import click
import httpx
import pytest
from click.testing import CliRunner

from eventgateway.cli.context import CliOptions
from eventgateway.cli.logs import (
    _follow,
    _follow_until_closed,
    _why_ended,
    format_line,
    format_timestamp,
)
from eventgateway.cli.main import cli
from eventgateway.sdk._wire import GatewayError
from tests.cli.kit import clean_workdir
from tests.support.process import GatewayProcess

SPACE = "acme-crm"
HANDLER = """
def handler(event, context):
    print("Saving user to CRM:")
    print(event["data"])
    return {"message": "success"}
"""
REQUEST_ID = r"[0-9a-f-]{36}"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \(\+00:00\)"


# -- formatting, without a gateway ---------------------------------------------------------


def entry(message: str, stream: str = "stdout", timestamp: str = "2026-11-26T18:20:07.365Z"):
    return {"timestamp": timestamp, "requestId": "r-1", "stream": stream, "message": message}


def test_output_lines_carry_utc_time_and_request_id_separated_by_tabs():
    assert format_line(entry("Saving user to CRM:")) == (
        "2026-11-26 18:20:07.365 (+00:00)\tr-1\tSaving user to CRM:"
    )


@pytest.mark.parametrize(
    "message",
    ["START RequestId: r-1 Version: $LATEST", "Task timed out after 6.00 seconds"],
)
def test_system_lines_are_printed_as_they_are(message):
    assert format_line(entry(message, stream="system")) == message


@pytest.mark.parametrize(
    ("timestamp", "shown"),
    [
        ("2026-11-26T18:20:07.365Z", "2026-11-26 18:20:07.365 (+00:00)"),
        ("2026-11-26T19:20:07.365+01:00", "2026-11-26 18:20:07.365 (+00:00)"),
        ("2026-11-26T18:20:07", "2026-11-26 18:20:07.000 (+00:00)"),
        ("yesterday", "yesterday"),
    ],
)
def test_timestamps_are_shown_in_utc_with_milliseconds(timestamp, shown):
    assert format_timestamp(timestamp) == shown


class Recorder:
    def __init__(self) -> None:
        self.printed: list[dict] = []

    def print(self, line: dict) -> None:
        self.printed.append(line)


def test_following_skips_only_the_repeated_lines_of_the_last_millisecond():
    shown = [entry("a"), entry("a")]
    stream = [entry("a"), entry("a"), entry("a"), entry("b")]
    recorder = Recorder()

    _follow(recorder, stream, shown)

    assert recorder.printed == [entry("a"), entry("b")]


def gone(message: str):
    yield entry("a")
    raise GatewayError(message, status=None)


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        ([entry("a")], "closed it (stopped or restarting)"),
        (gone("RemoteProtocolError: peer closed connection"), "went away (RemoteProtocolError"),
    ],
)
def test_a_tail_the_gateway_ends_is_an_error_naming_the_gateway(stream, reason):
    recorder = Recorder()
    options = CliOptions(url="http://acme-crm.localhost:4000", space="acme-crm")

    with pytest.raises(click.ClickException) as ended:
        _follow_until_closed(recorder, stream, [], options)

    assert recorder.printed == [entry("a")]
    assert ended.value.message.startswith(
        f"the log stream ended: the gateway at http://localhost:4001 {reason}"
    )


class AfterTheEnd:
    """What a gateway answers once a tail ended: its status, then the function's get."""

    space = "acme-crm"

    def __init__(self, up: bool, status: int | None) -> None:
        self.up, self.failing = up, status

    def status(self) -> bool:
        return self.up

    def get_function(self, function_id: str) -> dict[str, str]:
        if self.failing is not None:
            raise GatewayError("refused", status=self.failing)
        return {"functionId": function_id}


@pytest.mark.parametrize(
    ("up", "status", "said"),
    [
        (True, 401, "the space 'acme-crm' was deleted, or this key was revoked"),
        (True, 404, "function 'crm' is gone from space 'acme-crm'"),
        (True, None, "the gateway at http://localhost:4001 closed it (stopped or restarting)"),
        (False, None, "the gateway at http://localhost:4001 closed it (stopped or restarting)"),
    ],
)
def test_a_tail_that_ended_says_why_when_the_gateway_tells(up, status, said):
    # QA: a space deleted on another instance ended the tail with "the gateway closed it".
    options = CliOptions(url="http://acme-crm.localhost:4000", space="acme-crm")
    gateway = AfterTheEnd(up, status)

    with pytest.raises(click.ClickException) as ended:
        _follow_until_closed(
            Recorder(),
            [entry("a")],
            [],
            options,
            lambda: _why_ended(gateway, "crm"),  # type: ignore[arg-type]
        )

    assert ended.value.message == f"the log stream ended: {said}"


# -- against a real gateway ----------------------------------------------------------------


def set_up(process: GatewayProcess) -> GatewayProcess:
    """Upload HANDLER as function addUserToCRM, subscribed to user.created; return the
    gateway."""
    config = httpx.Client(base_url=f"{process.config_url}/v1/spaces/{SPACE}", timeout=30)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", HANDLER)
    upload = config.post(
        "/bundles", content=archive.getvalue(), headers={"content-type": "application/zip"}
    )
    assert upload.status_code in (200, 201), upload.text
    for resource, body in (
        (
            "functions",
            {
                "functionId": "addUserToCRM",
                "type": "python",
                "provider": {"bundle": upload.json()["bundleId"], "handler": "handler.handler"},
            },
        ),
        ("eventtypes", {"name": "user.created"}),
        (
            "subscriptions",
            {
                "type": "async",
                "eventType": "user.created",
                "functionId": "addUserToCRM",
                "path": f"/{SPACE}/",  # where `eg emit` sends by default
            },
        ),
    ):
        response = config.post(f"/{resource}", json=body)
        assert response.status_code == 201, response.text
    config.close()
    return process


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = set_up(GatewayProcess(tmp_path_factory.mktemp("logs") / "data").start())
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    return clean_workdir(monkeypatch, tmp_path)


def env_for(gateway: GatewayProcess) -> dict[str, str]:
    return {"EG_URL": gateway.events_url, "EG_CONFIG_URL": gateway.config_url, "EG_SPACE": SPACE}


def emit(gateway: GatewayProcess, user: dict) -> None:
    result = CliRunner().invoke(
        cli, ["emit", "--event", "user.created", "--data", json.dumps(user)], env=env_for(gateway)
    )
    assert result.exit_code == 0, result.output


def logs(gateway: GatewayProcess, *args: str, function: str = "addUserToCRM") -> list[str]:
    result = CliRunner().invoke(cli, ["logs", "-f", function, *args], env=env_for(gateway))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def invocation(
    gateway: GatewayProcess, marker: str, timeout_s: float = 30.0, function: str = "addUserToCRM"
) -> list[str]:
    """`eg logs` lines of the invocation that printed ``marker``, once its REPORT is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = logs(gateway, function=function)
        found = [line.split("\t")[1] for line in lines if marker in line and "\t" in line]
        if found:
            own = [line for line in lines if found[0] in line]
            if own[-1].startswith("REPORT RequestId: "):
                return own
        assert time.monotonic() < deadline, lines
        time.sleep(0.1)  # polling the gateway's log store (written async): nothing to wait on


def test_logs_show_start_output_end_and_report(gateway):
    user = {"username": "ada", "company": "Test Corp, Inc."}
    emit(gateway, user)

    own = invocation(gateway, "'ada'")

    request_id = own[0].split()[2]
    assert re.fullmatch(REQUEST_ID, request_id)
    assert own[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert re.fullmatch(rf"{STAMP}\t{request_id}\tSaving user to CRM:", own[1])
    assert re.fullmatch(rf"{STAMP}\t{request_id}\t{re.escape(str(user))}", own[2])
    assert own[3] == f"END RequestId: {request_id}"
    assert re.fullmatch(
        rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 1024 MB\tMax Memory Used: \d+ MB(\tInit Duration: [\d.]+ ms)?",
        own[4],
    )
    assert len(own) == 5


def test_filter_since_and_json_narrow_and_reshape_the_output(gateway):
    emit(gateway, {"username": "grace"})
    invocation(gateway, "grace")

    filtered = logs(gateway, "--filter", "grace")
    future = logs(gateway, "--since", "2999-01-01T00:00:00Z")
    as_json = [json.loads(line) for line in logs(gateway, "--output", "json", "--limit", "3")]

    assert any("grace" in line for line in filtered)
    assert not any("Saving user to CRM:" in line for line in filtered)
    assert future == []
    assert len(as_json) == 3
    assert set(as_json[0]) == {"timestamp", "requestId", "stream", "message"}


def test_a_bad_since_is_a_usage_error_naming_it_before_any_request():
    # QA: exit status 1 (the gateway's 400), 2 for every other bad option value.
    result = CliRunner().invoke(
        cli, ["logs", "-f", "x", "--since", "soon", "--url", "http://127.0.0.1:9"]
    )

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--since': since 'soon' is not a time: use RFC 3339 "
        "(2026-11-26T18:00:00Z), Unix seconds, or a duration such as 30s, 10m, 2h, 7d"
    )


@pytest.mark.parametrize("tail", [[], ["-t"]])
def test_an_unknown_function_fails_as_invoke_does_before_any_streaming(gateway, tail):
    result = CliRunner().invoke(cli, ["logs", "-f", "nosuchfn", *tail], env=env_for(gateway))

    assert result.exit_code == 1
    assert result.stderr == 'Error: Function "nosuchfn" not found.\n'
    assert result.stdout == ""


@pytest.mark.parametrize("path", ["logs", "logs/stream"])
def test_the_logs_endpoints_answer_404_for_a_function_the_space_does_not_have(gateway, path):
    url = f"{gateway.config_url}/v1/spaces/{SPACE}/functions/nosuchfn/{path}"

    response = httpx.get(url, params={"since": "10m", "filter": "x"}, timeout=30)

    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": 'Function "nosuchfn" not found.'}]}


def test_a_registered_function_without_lines_has_empty_logs(gateway):
    config = httpx.Client(base_url=f"{gateway.config_url}/v1/spaces/{SPACE}", timeout=30)
    provider = config.get("/functions/addUserToCRM").json()["provider"]
    body = {"functionId": "neverRun", "type": "python", "provider": provider}
    assert config.post("/functions", json=body).status_code == 201

    response = config.get("/functions/neverRun/logs")
    config.close()

    assert response.status_code == 200
    assert response.json() == {"logs": []}
    assert logs(gateway, function="neverRun") == []


def test_the_function_may_be_named_without_f(gateway):
    emit(gateway, {"username": "positional"})
    invocation(gateway, "positional")

    result = CliRunner().invoke(
        cli, ["logs", "addUserToCRM", "--filter", "positional"], env=env_for(gateway)
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == logs(gateway, "--filter", "positional")
    assert "positional" in result.stdout


def test_a_removed_function_keeps_its_logs_readable(gateway):
    config = httpx.Client(base_url=f"{gateway.config_url}/v1/spaces/{SPACE}", timeout=30)
    provider = config.get("/functions/addUserToCRM").json()["provider"]
    for resource, body in (
        ("functions", {"functionId": "formerCRM", "type": "python", "provider": provider}),
        ("eventtypes", {"name": "user.left"}),
        (
            "subscriptions",
            {"type": "async", "eventType": "user.left", "functionId": "formerCRM",
             "path": f"/{SPACE}/"},
        ),
    ):  # fmt: skip
        assert config.post(f"/{resource}", json=body).status_code == 201
    result = CliRunner().invoke(
        cli, ["emit", "--event", "user.left", "--data", '{"username": "leaver"}'],
        env=env_for(gateway),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    invocation(gateway, "leaver", function="formerCRM")
    subscription = config.get("/subscriptions").json()["subscriptions"]
    for item in subscription:
        if item["functionId"] == "formerCRM":
            config.delete(f"/subscriptions/{item['subscriptionId']}")
    assert config.delete("/functions/formerCRM").status_code == 204
    config.close()

    kept = logs(gateway, function="formerCRM")
    filtered_out = logs(gateway, "--filter", "no such text", function="formerCRM")
    stream_url = f"{gateway.config_url}/v1/spaces/{SPACE}/functions/formerCRM/logs/stream"
    with httpx.stream("GET", stream_url, params={"since": "1d"}, timeout=30) as stream:
        status = stream.status_code
        first = next(stream.iter_lines())  # the history, then it would follow

    assert any("leaver" in line for line in kept)
    assert filtered_out == []
    assert status == 200
    assert first.startswith("data: ")


class LineReader:
    """Reads a pipe in a thread so the test can wait for a line with a deadline."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: io.TextIOBase) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def seen_within(self, predicate, timeout_s: float) -> bool:
        """Whether a line matching ``predicate`` arrives within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return False
            assert line is not None, f"the output ended first: {self.seen}"
            self.seen.append(line)
            if predicate(line):
                return True
        return False

    def until(self, predicate, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching line within {timeout_s} s: {self.seen}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"the output ended first: {self.seen}"
            self.seen.append(line)
            if predicate(line):
                return line


def test_tail_prints_recent_lines_then_follows_a_new_invocation_until_ctrl_c(gateway):
    emit(gateway, {"username": "first"})
    invocation(gateway, "first")
    tail = subprocess.Popen(
        [sys.executable, "-m", "eventgateway", "logs", "-f", "addUserToCRM", "-t"],
        env={**os.environ, **env_for(gateway)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        reader = LineReader(tail.stdout)
        first = reader.until(lambda line: line.startswith("REPORT RequestId: "))

        emit(gateway, {"username": "newcomer"})
        reader.until(lambda line: "newcomer" in line)
        second = reader.until(lambda line: line.startswith("REPORT RequestId: "))
        assert second != first
        # Ctrl-C once a second until it ends, as a person presses it again: one signal
        # taken by another thread of the process while the main one waits in a read is
        # acted on only at the next byte (rare; seen once in CI).
        deadline = time.monotonic() + 15
        while tail.poll() is None and time.monotonic() < deadline:
            tail.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                tail.wait(timeout=1)
        if tail.poll() is None:
            tail.kill()
            tail.wait()
            raise AssertionError(f"eg logs -t ignored Ctrl-C; last lines {reader.seen[-5:]}")
        errors = tail.stderr.read()
        tail.stderr.close()
        reader.thread.join(timeout=10)  # it reads to the end of the output, then stops
        tail.stdout.close()
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()

    assert tail.returncode == 0
    assert errors == ""
    # The newcomer's invocation shows up once, framed like the first.
    assert sum("newcomer" in line for line in reader.seen) == 1


def test_tail_fails_in_one_line_when_the_gateway_stops(tmp_path: pathlib.Path):
    own = set_up(GatewayProcess(tmp_path / "data").start())
    try:
        emit(own, {"username": "before"})
        invocation(own, "before")
        tail = subprocess.Popen(
            [sys.executable, "-m", "eventgateway", "logs", "addUserToCRM", "-t"],
            env={**os.environ, **env_for(own)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert tail.stdout is not None
            assert tail.stderr is not None
            reader = LineReader(tail.stdout)
            reader.until(lambda line: line.startswith("REPORT RequestId: "))
            own.stop(signal.SIGINT)  # what QA did: Ctrl-C of `eg serve`
            tail.wait(timeout=30)
            errors = tail.stderr.read()
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
            for pipe in (tail.stdout, tail.stderr):
                if pipe is not None:
                    pipe.close()
    finally:
        own.stop()

    assert tail.returncode == 1
    assert errors.startswith(f"Error: the log stream ended: the gateway at {own.config_url} ")
    assert len(errors.splitlines()) == 1


BURST_LINES = 20_000
BURST_HANDLER = """
def handler(event, context):
    lines = event["data"]["lines"]
    if not lines:
        print("ping")
    for i in range(lines):
        print("burst line", i)
"""


def register(gateway: GatewayProcess, function_id: str, source: str) -> httpx.Client:
    """Upload ``source`` as ``handler.py`` and register it as ``function_id``; a client of
    the space's Configuration API, to close."""
    config = httpx.Client(base_url=f"{gateway.config_url}/v1/spaces/{SPACE}", timeout=120)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", source)
    upload = config.post(
        "/bundles", content=archive.getvalue(), headers={"content-type": "application/zip"}
    )
    assert upload.status_code in (200, 201), upload.text
    provider = {"bundle": upload.json()["bundleId"], "handler": "handler.handler"}
    body = {"functionId": function_id, "type": "python", "provider": provider}
    assert config.post("/functions", json=body).status_code == 201
    return config


def test_tail_shows_every_line_of_a_burst_in_order_once(gateway):
    config = register(gateway, "burster", BURST_HANDLER)
    tail = subprocess.Popen(
        [sys.executable, "-m", "eventgateway", "logs", "burster", "-t"],
        env={**os.environ, **env_for(gateway)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert tail.stdout is not None
    reader = LineReader(tail.stdout)
    try:
        # The tail shows only lines written once its stream is open: ping until one shows.
        deadline = time.monotonic() + 30
        while not reader.seen_within(lambda line: line.endswith("\tping"), timeout_s=1.0):
            assert time.monotonic() < deadline, "the tail never showed a ping"
            assert config.post("/functions/burster/invoke", json={"data": {"lines": 0}})
        done = config.post("/functions/burster/invoke", json={"data": {"lines": BURST_LINES}})
        assert done.json()["ok"], done.text
        request_id = done.json()["requestId"]
        reader.until(lambda line: line.startswith(f"REPORT RequestId: {request_id}"), 120)
    finally:
        tail.kill()
        tail.wait()
        config.close()
        reader.thread.join(timeout=10)  # it reads to the end of the output, then stops
        tail.stdout.close()

    burst = [line.split("\t")[2] for line in reader.seen if "\tburst line " in line]
    assert burst == [f"burst line {i}" for i in range(BURST_LINES)]
    assert not any("dropped" in line for line in reader.seen)
