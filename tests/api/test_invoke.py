"""``POST /v1/spaces/{space}/functions/{id}/invoke`` on a whole in-process gateway.

Python functions run in real workers from an uploaded bundle, with both log stores
(memory and SQLite); HTTP functions are played by a real receiver on 127.0.0.1.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventgateway.api.invoke import (
    DEFAULT_EVENT_TYPE,
    DEFAULT_SOURCE,
    MAX_LOG_LINES,
    _invocation_lines,
    _result,
    is_invoke_path,
)
from eventgateway.providers.runtime import REQUEST_ID_HEADER
from eventgateway.runtime.base import LogLine
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver, Reply

HANDLERS = """
def echo(event, context):
    print("Saving user to CRM:")
    print(event.get("data"))
    return {"type": event["type"], "source": event["source"], "data": event.get("data")}

def broken(event, context):
    raise ValueError("no such user")

def page(event, context):
    return {"statusCode": 200, "body": "hello"}
"""
INVOKE = "/v1/spaces/acme/functions/{}/invoke"
REQUEST_ID = re.compile(r"[0-9a-f-]{36}")


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


async def python_functions(gw: InProcess, *names: str) -> None:
    bundle_id = await gw.upload_bundle({"handlers.py": HANDLERS})
    for name in names:
        provider = {"bundle": bundle_id, "handler": f"handlers.{name}"}
        await gw.create("functions", {"functionId": name, "type": "python", "provider": provider})


async def invoke(gw: InProcess, function_id: str, body: Any = None) -> dict[str, Any]:
    response = await gw.config.post(INVOKE.format(function_id), json=body)
    assert response.status_code == 200, response.text
    assert REQUEST_ID_HEADER not in response.headers
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize(
    ("path", "ours"),
    [
        ("/v1/spaces/acme/functions/f/invoke", True),
        ("/v1/spaces/acme/functions/f/logs", False),
        ("/v1/spaces/acme/functions/f", False),
        ("/v1/spaces/acme/functions/f/invoke/", False),
        ("/v1/spaces/acme/subscriptions/f/invoke", False),
    ],
)
def test_is_invoke_path(path, ours):
    assert is_invoke_path(path) is ours


async def test_a_python_function_answers_with_its_result_and_its_framed_log_lines(gw):
    await python_functions(gw, "echo")

    answer = await invoke(gw, "echo", {"data": {"username": "ada"}})

    request_id = answer["requestId"]
    assert REQUEST_ID.fullmatch(request_id)
    assert answer["ok"] is True
    assert answer["result"] == {
        "type": "invoke",
        "source": "/eventgateway/invoke",
        "data": {"username": "ada"},
    }
    assert (answer["eventType"], answer["status"], answer["error"]) == ("invoke", None, None)
    assert answer["durationMs"] > 0
    messages = [line["message"] for line in answer["logs"]]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[1:3] == ["Saving user to CRM:", "{'username': 'ada'}"]
    assert messages[3] == f"END RequestId: {request_id}"
    assert messages[4].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert len(messages) == 5
    assert {line["requestId"] for line in answer["logs"]} == {request_id}


async def test_each_invocation_gets_only_its_own_lines(gw):
    await python_functions(gw, "echo")

    first = await invoke(gw, "echo", {"data": 1})
    second = await invoke(gw, "echo", {"data": 2})

    assert first["requestId"] != second["requestId"]
    assert [line["message"] for line in second["logs"]][1:3] == ["Saving user to CRM:", "2"]
    assert "Init Duration" in first["logs"][-1]["message"]
    assert "Init Duration" not in second["logs"][-1]["message"]


async def test_a_handler_that_raises_is_ok_false_with_lambdas_error_and_its_logs(gw):
    await python_functions(gw, "broken")

    answer = await invoke(gw, "broken")

    assert answer["ok"] is False
    assert answer["result"] is None
    error = answer["error"]
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no such user")
    # The handler's own frame, even when the handler never imported asyncio.
    assert any('handlers.py", line' in frame for frame in error["stackTrace"]), error
    assert answer["logs"][0]["message"].startswith(f"START RequestId: {answer['requestId']}")
    assert answer["logs"][-1]["message"].startswith(f"REPORT RequestId: {answer['requestId']}")


async def test_the_event_type_defaults_to_the_first_subscriptions_and_can_be_given(gw):
    await python_functions(gw, "echo")
    await gw.event_type("user.created")
    await gw.event_type("user.deleted")
    created = await gw.subscribe(
        type="async", eventType="user.created", functionId="echo", path="/a"
    )
    deleted = await gw.subscribe(
        type="async", eventType="user.deleted", functionId="echo", path="/b"
    )
    first = min((created, deleted), key=lambda s: s["subscriptionId"])

    default = await invoke(gw, "echo")
    given = await invoke(gw, "echo", {"event": "order.placed", "source": "/tests"})

    assert default["eventType"] == default["result"]["type"] == first["eventType"]
    assert given["result"] == {"type": "order.placed", "source": "/tests", "data": None}


async def test_a_sync_route_does_not_pass_the_request_id_header_on(gw):
    await python_functions(gw, "page")
    await gw.event_type("http.request")
    await gw.subscribe(
        type="sync", eventType="http.request", functionId="page", path="/acme/p", method="GET"
    )

    response = await gw.events.get("/acme/p")

    assert (response.status_code, response.text) == (200, "hello")
    assert REQUEST_ID_HEADER not in response.headers


async def test_an_http_function_answers_with_its_status_and_body(receiver: Receiver):
    receiver.reply_json("/ok", {"saved": True})
    receiver.reply("/missing", Reply(status=404, body=b"no such thing"))
    receiver.reply("/down", Reply(status=500, body=b'{"reason": "db down"}'))
    async with in_process_gateway(shutdown_timeout_s=1.0) as gw:
        for name in ("ok", "missing", "down"):
            await gw.http_function(name, receiver.url(f"/{name}"))

        ok = await invoke(gw, "ok", {"data": [1, 2]})
        missing = await invoke(gw, "missing")
        down = await invoke(gw, "down")

    assert (ok["ok"], ok["status"], ok["result"], ok["requestId"]) == (
        True,
        200,
        {"saved": True},
        None,
    )
    assert ok["logs"] == []
    [call] = receiver.calls_to("/ok")
    assert call.json()["data"] == [1, 2]
    assert call.json()["id"] == ok["eventId"]
    # As on a sync route, only a 500 (or no answer) is a failed call.
    assert (missing["ok"], missing["status"], missing["result"]) == (True, 404, "no such thing")
    assert (down["ok"], down["status"], down["result"]) == (False, 500, {"reason": "db down"})
    assert down["error"] == {"message": "function 'down' answered HTTP 500"}


async def test_an_unknown_function_is_404_and_counted():
    async with in_process_gateway(shutdown_timeout_s=1.0) as gw:
        response = await gw.config.post(INVOKE.format("nope"), json={})
        metrics = (await gw.config.get("/v1/metrics")).text

    assert response.status_code == 404
    assert response.json() == {"errors": [{"message": 'Function "nope" not found.'}]}
    assert (
        'eventgateway_config_requests_total{operation="invoke",resource="function",space="acme"}'
        " 1.0" in metrics
    )


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"{not json", "not JSON"),
        (b"[1]", 'must be a JSON object like {"data": …}, got an array'),
        (b"2", "got a number"),
        (b'{"eventType": "x"}', 'unknown field "eventType"'),
        (b'{"event": 3}', 'field "event" must be a non-empty string, got 3'),
        (b'{"event": ""}', 'field "event" must be a non-empty string'),
        (b'{"source": null}', 'field "source" must be a non-empty string, got null'),
    ],
)
async def test_a_bad_body_is_400_naming_the_field(receiver: Receiver, content, named):
    async with in_process_gateway(shutdown_timeout_s=1.0) as gw:
        await gw.http_function("f", receiver.url("/f"))
        response = await gw.config.post(INVOKE.format("f"), content=content)

    assert response.status_code == 400
    assert named in response.json()["errors"][0]["message"]
    assert receiver.calls == []


async def test_data_goes_to_the_function_as_sent_whatever_numbers_it_holds(receiver: Receiver):
    # QA: a 5,000-digit integer was a 400 here ("Integer value out of range") though the
    # Events API delivers it; data is not decoded on the way, so it arrives byte for byte.
    data = b'{"n": ' + b"9" * 5000 + b', "x": [1.5e300, "a"]}'
    async with in_process_gateway(shutdown_timeout_s=1.0) as gw:
        await gw.http_function("f", receiver.url("/f"))
        receiver.reply("/f", Reply(status=200, body=data))
        response = await gw.config.post(INVOKE.format("f"), content=b'{"data": ' + data + b"}")
        number = await gw.config.post(INVOKE.format("f"), content=b"9" * 5000)

    assert response.status_code == 200
    [call] = receiver.calls
    assert b'"data":' + data in call.body
    assert b'"result":' + data in response.content  # the reply, as JSON too (not a string)
    assert number.status_code == 400
    assert "must be a JSON object" in number.json()["errors"][0]["message"]


async def test_an_empty_body_invokes_without_data(receiver: Receiver):
    async with in_process_gateway(shutdown_timeout_s=1.0) as gw:
        await gw.http_function("f", receiver.url("/f"))
        response = await gw.config.post(INVOKE.format("f"))

    assert response.status_code == 200
    [call] = receiver.calls
    assert "data" not in call.json()
    assert call.json()["type"] == "invoke"


async def test_openapi_describes_the_invoke_route():
    async with in_process_gateway(shutdown_timeout_s=1.0) as gw:
        document = (await gw.config.get("/openapi.json")).json()

    item = document["paths"]["/v1/spaces/{space}/functions/{functionId}/invoke"]
    assert set(item) == {"parameters", "post"}
    assert set(item["post"]["responses"]) == {"200", "400", "404", "500"}
    request = document["components"]["schemas"]["InvokeInput"]["properties"]
    assert f"`{DEFAULT_EVENT_TYPE}`" in request["event"]["description"]
    assert f"`{DEFAULT_SOURCE}`" in request["source"]["description"]
    result = document["components"]["schemas"]["InvokeResult"]
    assert set(result["required"]) == {
        "ok",
        "requestId",
        "eventId",
        "eventType",
        "status",
        "result",
        "error",
        "durationMs",
        "logs",
    }


async def test_an_invocation_answers_with_its_newest_lines_only():
    # A handler may print without end; the answer is one JSON document.
    def line(message: str, stream: str = "stdout", request_id: str = "r1") -> LogLine:
        return LogLine("acme", "fn", request_id, 0.0, stream, message)  # type: ignore[arg-type]

    printed = [line(f"line {n}") for n in range(MAX_LOG_LINES + 500)]
    stream = [
        line("START RequestId: r1 Version: $LATEST", "system"),
        line("from another invocation", request_id="r2"),
        *printed,
        line("END RequestId: r1", "system"),
        line("REPORT RequestId: r1\tDuration: 1.00 ms", "system"),
        line("after the report"),
    ]

    async def tail() -> AsyncIterator[LogLine]:
        for item in stream:
            yield item

    lines = await _invocation_lines(tail(), "r1", "acme", "fn")

    assert len(lines) == MAX_LOG_LINES + 1
    assert lines[0].stream == "system"
    assert "503 log lines dropped" in lines[0].message
    assert lines[-1].message.startswith("REPORT RequestId: r1")
    assert lines[1].message == f"line {502}"


def test_a_result_nested_past_the_stack_is_shown_as_text():
    nested = b"[" * 100_000 + b"]" * 100_000

    assert _result(nested) == nested.decode()
