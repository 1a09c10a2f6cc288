"""Bundles and function logs on the Configuration API (``api/runtime.py``).

Requests go through httpx's ASGI transport in-process; the Server-Sent Events stream runs
on a real uvicorn on 127.0.0.1, because only a socket shows that a client going away ends
the stream and releases its tail. Log stores are the real ones (memory and SQLite). Every
wait polls a condition under a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import pathlib
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from eventgateway.api.runtime import create_runtime_app, is_runtime_path, parse_since
from eventgateway.api.runtime_stream import EventStream, rfc3339_ms
from eventgateway.errors import ValidationError
from eventgateway.runtime.base import LogLine
from eventgateway.runtime.bundles import BundleStore
from eventgateway.runtime.logs import MemoryLogStore, SqliteLogStore
from tests.support.ports import free_port

SPACE = "acme-crm"
FN = "addUserToCRM"
BASE = "http://127.0.0.1:4001"
LOGS = f"/v1/spaces/{SPACE}/functions/{FN}/logs"
DEADLINE_S = 5.0
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def line(message: str, ts: float = T0, **kw: Any) -> LogLine:
    return LogLine(
        space=kw.get("space", SPACE),
        function_id=kw.get("fn", FN),
        request_id=kw.get("request_id", "7b8800f5"),
        timestamp=ts,
        stream=kw.get("stream", "stdout"),
        message=message,
    )


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` until it holds; fail after the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)  # the poll interval; the deadline bounds the wait


def errors(response: httpx.Response) -> list[str]:
    return [item["message"] for item in response.json()["errors"]]


@pytest.fixture(params=["memory", "sqlite"])
async def logs(request, tmp_path: pathlib.Path) -> AsyncIterator[MemoryLogStore | SqliteLogStore]:
    store: MemoryLogStore | SqliteLogStore = (
        MemoryLogStore() if request.param == "memory" else SqliteLogStore(tmp_path / "logs.db")
    )
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def bundles(tmp_path: pathlib.Path) -> BundleStore:
    return BundleStore(tmp_path / "bundles", max_zip_bytes=64 * 1024)


@pytest.fixture
async def client(bundles, logs) -> AsyncIterator[httpx.AsyncClient]:
    app = create_runtime_app(bundles, logs, keepalive_s=0.2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "ours"),
    [
        ("/v1/spaces/s/bundles", True),
        ("/v1/spaces/s/bundles/" + "0" * 64, True),
        ("/v1/spaces/s/functions/f/logs", True),
        ("/v1/spaces/s/functions/f/logs/stream", True),
        ("/v1/spaces/s/functions/f", False),  # the function itself: the config API's
        ("/v1/spaces/s/functions", False),
        ("/v1/spaces/s/functions/logs", False),  # a function named "logs"
        ("/v1/spaces/s/subscriptions/x/logs", False),
        ("/v1/spaces/s/events", False),
        ("/v2/spaces/s/bundles", False),
        ("/v1/status", False),
        ("/", False),
    ],
)
def test_is_runtime_path(path, ours):
    assert is_runtime_path(path) is ours


def test_every_route_of_the_app_is_a_runtime_path(bundles):
    app = create_runtime_app(bundles, MemoryLogStore())
    for route in app.routes:
        path = route.path.replace("{space}", "s").replace("{functionId}", "f")  # type: ignore[attr-defined]
        assert is_runtime_path(path.replace("{bundleId}", "0" * 64)), path


async def test_unknown_routes_and_methods_answer_like_the_config_api(client):
    assert (await client.get("/v1/spaces/s/nothing/here")).text == "404 page not found\n"
    response = await client.delete(f"/v1/spaces/s/bundles/{'0' * 64}")
    assert response.status_code == 405
    assert (await client.get("/v1/spaces/s/bundles")).status_code == 405


# -- bundles ----------------------------------------------------------------------------------


async def test_upload_creates_then_finds_the_bundle(client):
    data = make_zip({"handler.py": "def handler(event, context):\n    return 1\n"})

    first = await client.post(
        f"/v1/spaces/{SPACE}/bundles", content=data, headers={"content-type": "application/zip"}
    )
    again = await client.post(f"/v1/spaces/{SPACE}/bundles", content=data)

    assert first.status_code == 201
    assert again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["size"] == len(data)
    bundle_id = first.json()["bundleId"]
    got = await client.get(f"/v1/spaces/{SPACE}/bundles/{bundle_id}")
    assert got.status_code == 200
    assert got.json() == first.json()
    assert (await client.head(f"/v1/spaces/{SPACE}/bundles/{bundle_id}")).status_code == 200


async def test_an_unknown_bundle_is_404_and_a_malformed_id_400(client):
    unknown = "ab" * 32
    response = await client.get(f"/v1/spaces/{SPACE}/bundles/{unknown}")
    assert response.status_code == 404
    assert errors(response) == [f'Bundle "{unknown}" not found.']
    assert (await client.head(f"/v1/spaces/{SPACE}/bundles/{unknown}")).status_code == 404

    response = await client.get(f"/v1/spaces/{SPACE}/bundles/not-a-hash")
    assert response.status_code == 400
    assert errors(response)[0].startswith("bundleId 'not-a-hash' is not a bundle id")


async def test_an_invalid_zip_is_400(client):
    response = await client.post(f"/v1/spaces/{SPACE}/bundles", content=b"not a zip")

    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "bundle is not a valid zip archive"}]}


async def test_a_zip_slip_is_400(client):
    response = await client.post(
        f"/v1/spaces/{SPACE}/bundles", content=make_zip({"../evil.py": "x"})
    )

    assert response.status_code == 400
    assert "points outside the bundle" in errors(response)[0]


async def test_an_oversized_upload_is_413_naming_the_limit(client):
    response = await client.post(f"/v1/spaces/{SPACE}/bundles", content=b"x" * 70_000)

    assert response.status_code == 413
    assert errors(response) == [
        "bundle is 70000 bytes, over the 65536 bytes limit for a zip: "
        "leave out what the function does not need"
    ]


async def test_an_oversized_upload_without_content_length_is_cut_off(client):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1000

    response = await client.post(f"/v1/spaces/{SPACE}/bundles", content=chunks())

    assert response.status_code == 413
    assert "over the 65536 bytes limit" in errors(response)[0]
    assert "at least" in errors(response)[0]


# -- querying logs ----------------------------------------------------------------------------


async def test_logs_are_listed_oldest_first_in_the_wire_shape(client, logs):
    logs.append(
        [
            line("START RequestId: 7b8800f5 Version: $LATEST", T0, stream="system"),
            line("Saving user to CRM:", T0 + 0.3655),
            line("other function", T0, fn="other"),
        ]
    )

    response = await client.get(LOGS)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "logs": [
            {
                "timestamp": "2023-11-14T22:13:20.000Z",
                "requestId": "7b8800f5",
                "stream": "system",
                "message": "START RequestId: 7b8800f5 Version: $LATEST",
            },
            {
                "timestamp": "2023-11-14T22:13:20.365Z",
                "requestId": "7b8800f5",
                "stream": "stdout",
                "message": "Saving user to CRM:",
            },
        ]
    }


async def test_limit_filter_and_since_narrow_the_list(client, logs):
    logs.append([line(f"{'hit' if i % 2 else 'miss'} {i}", T0 + i) for i in range(10)])

    async def messages(**params: Any) -> list[str]:
        response = await client.get(LOGS, params=params)
        assert response.status_code == 200, response.text
        return [item["message"] for item in response.json()["logs"]]

    assert await messages(limit=2) == ["miss 8", "hit 9"]
    assert await messages(filter="hit", limit=2) == ["hit 7", "hit 9"]
    assert await messages(since=str(int(T0 + 8))) == ["miss 8", "hit 9"]
    assert await messages(since="2023-11-14T22:13:28Z") == ["miss 8", "hit 9"]
    assert await messages(since="2023-11-14T23:13:28+01:00") == ["miss 8", "hit 9"]
    assert await messages(since=rfc3339_ms(T0 + 9)) == ["hit 9"]  # a shown time selects it
    assert await messages(filter="HIT") == []


async def test_a_duration_since_counts_back_from_now(client, logs):
    now = time.time()
    logs.append([line("an hour ago", now - 3600), line("a minute ago", now - 60)])

    response = await client.get(LOGS, params={"since": "10m"})

    assert [item["message"] for item in response.json()["logs"]] == ["a minute ago"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit '0' must be a whole number from 1 to 10000"),
        ({"limit": "10001"}, "limit '10001' must be a whole number from 1 to 10000"),
        ({"limit": "ten"}, "limit 'ten' must be a whole number from 1 to 10000"),
        ({"limit": "²"}, "limit '²' must be a whole number from 1 to 10000"),
        ({"since": "yesterday"}, "since 'yesterday' is not a time: use RFC 3339"),
        ({"since": "nan"}, "since 'nan' is not a time"),
        ({"since": "10 m"}, "since '10 m' is not a time"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(client, params, message):
    for path in (LOGS, f"{LOGS}/stream"):
        response = await client.get(path, params=params)

        assert response.status_code == 400
        assert errors(response)[0].startswith(message)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30s", T0 - 30),
        ("10m", T0 - 600),
        ("2h", T0 - 7200),
        ("1d", T0 - 86400),
        ("1h30m", T0 - 5400),
        ("1.5s", T0 - 1.5),
        ("250ms", T0 - 0.25),
        ("100000d", 0.0),  # longer ago than 1970: from the beginning
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T22:13:20.250+00:00", T0 + 0.25),
        ("2023-11-14T22:13:20", T0),  # no zone: UTC
    ],
)
def test_parse_since(raw, expected):
    assert parse_since(raw, now_s=T0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-5", "since '-5' is before 1970-01-01T00:00:00Z"),
        ("1969-07-20T20:17:40Z", "since '1969-07-20T20:17:40Z' is before 1970"),
        ("1e12", "since '1e12' is too far in the future: the latest is 9999-12-31T23:59:59Z"),
    ],
)
def test_parse_since_refuses_times_out_of_range(raw, message):
    with pytest.raises(ValidationError, match=message):
        parse_since(raw, now_s=T0)


def test_parse_since_refuses_infinity():
    with pytest.raises(ValidationError, match="'inf' is not a time"):
        parse_since("inf", now_s=0)


def test_timestamps_are_truncated_to_milliseconds():
    assert rfc3339_ms(T0 + 0.9999) == "2023-11-14T22:13:20.999Z"
    assert rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"


# -- the stream, in-process --------------------------------------------------------------------


async def drive(stream: EventStream) -> list[bytes]:
    """Run ``stream`` as a server would, with a client that never disconnects."""
    sent: list[dict[str, Any]] = []
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}  # pragma: no cover - never reached

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with asyncio.timeout(DEADLINE_S):
        await stream({"type": "http"}, receive, send)
    assert sent[0]["status"] == 200
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    return [message["body"] for message in sent[1:-1]]


async def test_a_line_in_both_history_and_tail_is_sent_once():
    class Tail:
        closed = False

        def __init__(self, lines: list[LogLine]) -> None:
            self._lines = iter(lines)

        def __aiter__(self) -> Tail:
            return self

        async def __anext__(self) -> LogLine:
            try:
                return next(self._lines)
            except StopIteration:
                raise StopAsyncIteration from None

        async def aclose(self) -> None:
            Tail.closed = True

    a, b, c = line("a", T0), line("b", T0 + 1), line("c", T0 + 2)

    chunks = await drive(EventStream(Tail([b, c]), [a, b], None, keepalive_s=60))

    events = b"".join(chunks).decode().split("\n\n")[:-1]
    assert [json.loads(event.removeprefix("data: "))["message"] for event in events] == [
        "a",
        "b",
        "c",
    ]
    assert Tail.closed


async def test_a_stream_without_history_opens_with_a_comment_and_ends_with_the_store():
    store = MemoryLogStore()
    tail = store.tail(SPACE, FN)
    store.append([line("only")])
    await store.close()

    chunks = await drive(EventStream(tail, [], None, keepalive_s=60))

    assert chunks[0] == b": keep-alive\n\n"
    assert json.loads(chunks[1].removeprefix(b"data: "))["message"] == "only"


# -- the stream, over a socket -------------------------------------------------------------------


@pytest.fixture
def serve(bundles, logs):
    """Start the app on a real uvicorn: ``async with serve(keepalive_s=…) as base_url``."""

    @contextlib.asynccontextmanager
    async def start(keepalive_s: float) -> AsyncIterator[str]:
        app = create_runtime_app(bundles, logs, keepalive_s=keepalive_s)
        port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        instance = uvicorn.Server(config)
        task = asyncio.create_task(instance.serve())
        try:
            await eventually(lambda: instance.started, "uvicorn has started")
            yield f"http://127.0.0.1:{port}"
        finally:
            instance.should_exit = True
            await task

    return start


class Events:
    """The events and comments of an SSE response, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, Any] | str:
        """The next ``data:`` object, or the text of the next comment."""
        block: list[str] = []
        async with asyncio.timeout(DEADLINE_S):
            while True:
                text = await anext(self._lines)
                if text:
                    block.append(text)
                elif block:
                    break
        (text,) = block
        if text.startswith(":"):
            return text[1:].strip()
        return json.loads(text.removeprefix("data: "))

    async def next_data(self) -> dict[str, Any]:
        while True:
            event = await self.next()
            if isinstance(event, dict):
                return event


async def test_a_stream_sends_history_then_new_lines_and_releases_its_tail(serve, logs):
    logs.append([line("old", T0), line("recent", time.time() - 5)])

    # No keep-alive within the test: only noticing the disconnect can release the tail.
    async with (
        serve(keepalive_s=3600) as server,
        httpx.AsyncClient(base_url=server) as client,
        client.stream("GET", f"{LOGS}/stream", params={"since": "1m"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        events = Events(response)
        assert (await events.next_data())["message"] == "recent"
        await eventually(lambda: logs.tail_count(SPACE, FN) == 1, "the stream tails")

        logs.append([line("Saving user to CRM:", time.time())])
        logs.append([line("not mine", time.time(), fn="other")])
        logs.append([line("END RequestId: 7b8800f5", time.time(), stream="system")])

        first, second = await events.next_data(), await events.next_data()
        assert first["message"] == "Saving user to CRM:"
        assert first["requestId"] == "7b8800f5"
        assert first["timestamp"].endswith("Z")
        assert (second["stream"], second["message"]) == ("system", "END RequestId: 7b8800f5")
        assert logs.tail_count(SPACE, FN) == 1

        await response.aclose()  # the client goes away; the server keeps running
        await eventually(lambda: logs.tail_count() == 0, "the tail is released")


async def test_a_stream_filters_new_lines_and_keeps_the_connection_alive(serve, logs):
    async with (
        serve(keepalive_s=0.2) as server,
        httpx.AsyncClient(base_url=server) as client,
        client.stream("GET", f"{LOGS}/stream", params={"filter": "CRM"}) as response,
    ):
        events = Events(response)
        assert await events.next() == "keep-alive"  # the opening comment
        await eventually(lambda: logs.tail_count(SPACE, FN) == 1, "the stream tails")

        logs.append([line("unrelated"), line("Saving user to CRM:")])

        assert (await events.next_data())["message"] == "Saving user to CRM:"
        assert await events.next() == "keep-alive"  # 0.2 s without a line

        await response.aclose()
        await eventually(lambda: logs.tail_count() == 0, "the tail is released")
