"""`eg invoke`: what it asks the SDK for and how it prints the answer; then a real `eg serve`."""

from __future__ import annotations

import io
import json
import pathlib
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from eventgateway.cli.invoke import ANSWER_WAIT_S, error_lines, invoke
from eventgateway.cli.logs import format_line
from eventgateway.sdk._wire import GatewayError
from eventgateway.sdk.sync import EventGateway
from tests.cli.kit import clean_workdir
from tests.support.process import GatewayProcess

RID = "7b8800f5-0000-4000-8000-000000000000"
LOGS = [
    {"timestamp": "2026-11-26T18:20:07.365Z", "requestId": RID, "stream": "system",
     "message": f"START RequestId: {RID} Version: $LATEST"},
    {"timestamp": "2026-11-26T18:20:07.366Z", "requestId": RID, "stream": "stdout",
     "message": "Saving user to CRM:"},
    {"timestamp": "2026-11-26T18:20:07.367Z", "requestId": RID, "stream": "system",
     "message": f"END RequestId: {RID}"},
    {"timestamp": "2026-11-26T18:20:07.367Z", "requestId": RID, "stream": "system",
     "message": f"REPORT RequestId: {RID}\tDuration: 0.38 ms\tBilled Duration: 1 ms"},
]  # fmt: skip
OK = {"ok": True, "requestId": RID, "status": None, "result": {"message": "success"},
      "error": None, "durationMs": 1.5, "logs": LOGS}  # fmt: skip
FAILED = {
    **OK,
    "ok": False,
    "result": None,
    "error": {
        "errorType": "ValueError",
        "errorMessage": "no such user",
        "stackTrace": ['  File "/b/handler.py", line 3, in handler\n    raise ValueError()\n'],
    },
}


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """No serverless.yml and no EG_* variables of the machine running the tests."""
    return clean_workdir(monkeypatch, tmp_path)


class FakeInvoke:
    """Stands in for ``EventGateway.invoke`` (as a class attribute it is not bound to the
    client): records the call, answers or raises."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def __call__(self, function_id: str, data: Any = None, **kw: Any) -> dict[str, Any]:
        self.calls.append((function_id, data, kw))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def run(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any] | Exception, *args: str):
    fake = FakeInvoke(answer)
    monkeypatch.setattr(EventGateway, "invoke", fake)
    return CliRunner().invoke(invoke, list(args)), fake


def test_the_function_data_and_event_go_to_the_sdk_with_a_long_wait(monkeypatch, workdir):
    (workdir / "user.json").write_text('{"username": "ada"}')

    result, fake = run(
        monkeypatch, OK, "-f", "addUserToCRM", "--data", "@user.json", "--event", "user.created"
    )

    assert result.exit_code == 0, result.output
    assert fake.calls == [
        ("addUserToCRM", {"username": "ada"}, {"event": "user.created", "wait_s": ANSWER_WAIT_S})
    ]


def test_without_data_or_event_none_is_sent(monkeypatch):
    result, fake = run(monkeypatch, OK, "-f", "f")

    assert result.exit_code == 0, result.output
    assert fake.calls == [("f", None, {"event": None, "wait_s": ANSWER_WAIT_S})]


@pytest.mark.parametrize("args", [["addUserToCRM"], ["addUserToCRM", "-f", "addUserToCRM"]])
def test_the_function_may_be_named_without_f(monkeypatch, args):
    result, fake = run(monkeypatch, OK, *args)

    assert result.exit_code == 0, result.output
    assert [call[0] for call in fake.calls] == ["addUserToCRM"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing the function: give its NAME, or -f/--function NAME."),
        (["a", "-f", "b"], "two functions given, 'a' and -f 'b'"),
    ],
)
def test_no_function_or_two_different_ones_is_a_usage_error(monkeypatch, args, message):
    result, fake = run(monkeypatch, OK, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.calls == []


def test_the_result_is_indented_json_then_a_blank_line_and_the_log_lines(monkeypatch):
    result, _ = run(monkeypatch, OK, "-f", "f")

    expected = json.dumps({"message": "success"}, indent=4).splitlines()
    assert result.stdout.splitlines() == [*expected, "", *[format_line(e) for e in LOGS]]
    assert result.stderr == ""


def test_no_log_prints_the_result_only(monkeypatch):
    result, _ = run(monkeypatch, OK, "-f", "f", "--no-log")

    assert result.stdout == '{\n    "message": "success"\n}\n'


def test_a_failed_invocation_prints_the_error_and_its_trace_and_exits_1(monkeypatch):
    result, _ = run(monkeypatch, FAILED, "-f", "f")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "ValueError: no such user",
        '  File "/b/handler.py", line 3, in handler',
        "    raise ValueError()",
    ]
    assert result.stdout.splitlines() == ["", *[format_line(e) for e in LOGS]]


def test_a_failed_http_function_shows_its_body_and_the_message(monkeypatch):
    answer = {**OK, "ok": False, "status": 500, "result": "boom", "logs": [],
              "error": {"message": "function 'f' answered HTTP 500"}}  # fmt: skip

    result, _ = run(monkeypatch, answer, "-f", "f")

    assert result.exit_code == 1
    assert result.stdout == '"boom"\n'
    assert result.stderr == "function 'f' answered HTTP 500\n"


@pytest.mark.parametrize(("answer", "status"), [(OK, 0), (FAILED, 1)])
def test_output_json_prints_the_raw_answer(monkeypatch, answer, status):
    result, _ = run(monkeypatch, answer, "-f", "f", "--output", "json")

    assert result.exit_code == status
    assert json.loads(result.stdout) == answer


def test_an_unknown_function_is_one_error_line(monkeypatch):
    missing = GatewayError('Function "nope" not found.', status=404)

    result, _ = run(monkeypatch, missing, "-f", "nope")

    assert result.exit_code == 1
    assert result.stderr == 'Error: Function "nope" not found.\n'


def test_data_that_is_not_json_is_refused_before_calling(monkeypatch):
    result, fake = run(monkeypatch, OK, "-f", "f", "--data", "{nope")

    assert result.exit_code == 2
    assert "Error: Invalid value for '--data': not JSON" in result.stderr
    assert fake.calls == []


@pytest.mark.parametrize(
    ("error", "lines"),
    [
        (None, ["the invocation failed"]),
        ({"message": "function 'f' answered HTTP 500"}, ["function 'f' answered HTTP 500"]),
        ({"errorType": "Error", "errorMessage": "x", "stackTrace": []}, ["Error: x"]),
        (
            {"errorType": "TypeError", "errorMessage": "y", "stackTrace": ["    at h (/i.js:1:2)"]},
            ["TypeError: y", "    at h (/i.js:1:2)"],
        ),
    ],
)
def test_error_lines(error, lines):
    assert error_lines(error) == lines


# -- against a real gateway ----------------------------------------------------------------

SPACE = "acme-crm"
HANDLER = """
def handler(event, context):
    print("Saving user to CRM:")
    print(event["data"])
    return {"message": "success", "type": event["type"]}

def broken(event, context):
    raise ValueError("no such user")
"""
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \(\+00:00\)"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("invoke") / "data").start()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", HANDLER)
    with httpx.Client(base_url=f"{process.config_url}/v1/spaces/{SPACE}", timeout=30) as config:
        upload = config.post(
            "/bundles", content=archive.getvalue(), headers={"content-type": "application/zip"}
        )
        assert upload.status_code in (200, 201), upload.text
        for name, handler in (("addUserToCRM", "handler.handler"), ("broken", "handler.broken")):
            provider = {"bundle": upload.json()["bundleId"], "handler": handler}
            body = {"functionId": name, "type": "python", "provider": provider}
            response = config.post("/functions", json=body)
            assert response.status_code == 201, response.text
    yield process
    process.stop()


def eg_invoke(gateway: GatewayProcess, *args: str):
    env = {"EG_URL": gateway.events_url, "EG_CONFIG_URL": gateway.config_url, "EG_SPACE": SPACE}
    return CliRunner().invoke(invoke, list(args), env=env)


def test_a_real_invocation_prints_the_result_and_its_lambda_style_log(gateway):
    result = eg_invoke(gateway, "-f", "addUserToCRM", "--data", '{"username": "ada"}')

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    blank = lines.index("")
    assert json.loads("\n".join(lines[:blank])) == {"message": "success", "type": "invoke"}
    start, *output, end, report = lines[blank + 1 :]
    request_id = start.split()[2]
    assert start == f"START RequestId: {request_id} Version: $LATEST"
    assert [re.sub(rf"^{STAMP}\t{request_id}\t", "", line) for line in output] == [
        "Saving user to CRM:",
        "{'username': 'ada'}",
    ]
    assert end == f"END RequestId: {request_id}"
    assert report.startswith(f"REPORT RequestId: {request_id}\tDuration: ")


def test_a_real_failure_exits_1_and_an_unknown_function_is_one_line(gateway):
    failed = eg_invoke(gateway, "-f", "broken")
    missing = eg_invoke(gateway, "-f", "nope")

    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[0] == "ValueError: no such user"
    assert failed.stdout.splitlines()[-1].startswith("REPORT RequestId: ")
    assert missing.exit_code == 1
    assert missing.stderr == 'Error: Function "nope" not found.\n'
