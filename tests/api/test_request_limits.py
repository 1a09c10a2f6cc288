"""Header, body, JSON depth and batch limits on both APIs of an in-process gateway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from eventgateway.api.deliveries import create_deliveries_app
from eventgateway.api.invoke import _body as invoke_body
from eventgateway.errors import ValidationError
from eventgateway.queue.memory import MemoryQueue
from eventgateway.routing.table import RoutingTable
from eventgateway.settings import Limits
from tests.api.support_config import errors
from tests.support.inprocess import InProcess, in_process_gateway

LIMITS = Limits(max_body_bytes=1000, max_header_bytes=2000, max_json_depth=5, max_batch_events=2)
CE10 = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture
async def gw() -> AsyncIterator[InProcess]:
    async with in_process_gateway(limits=LIMITS) as gateway:
        yield gateway


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


async def chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 100):
        yield b" " * 100


# -- headers: 431 on both APIs ------------------------------------------------------------


@pytest.mark.parametrize("api", ["events", "config"])
async def test_headers_over_the_limit_are_a_431_on_both_apis(gw: InProcess, api: str) -> None:
    client = gw.events if api == "events" else gw.config

    response = await client.get("/v1/status", headers={"x-big": "a" * 2000})

    assert response.status_code == 431
    assert errors(response).startswith("Request headers are ")
    assert errors(response).endswith("; the limit is 2000 bytes.")


async def test_headers_under_the_limit_reach_the_configuration_api(gw: InProcess) -> None:
    response = await gw.config.get("/v1/status", headers={"x-big": "a" * 1000})

    assert response.status_code == 200


# -- bodies: 413 on both APIs -------------------------------------------------------------


@pytest.mark.parametrize("api", ["events", "config"])
async def test_a_declared_body_over_the_limit_is_a_413_on_both_apis(
    gw: InProcess, api: str
) -> None:
    client = gw.events if api == "events" else gw.config

    response = await client.post("/v1/spaces/acme/eventtypes", content=b" " * 1001)

    assert response.status_code == 413
    assert errors(response) == "Request body is over the limit of 1000 bytes."


@pytest.mark.parametrize("api", ["events", "config"])
async def test_a_chunked_body_over_the_limit_is_a_413_on_both_apis(gw: InProcess, api: str) -> None:
    client = gw.events if api == "events" else gw.config

    response = await client.post("/v1/spaces/acme/eventtypes", content=chunks(1100))

    assert response.status_code == 413


async def test_a_chunked_body_under_the_limit_reaches_the_handler(gw: InProcess) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"user.created"}'

    response = await gw.config.post("/v1/spaces/acme/eventtypes", content=body())

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "user.created"


async def test_bundle_uploads_keep_their_own_larger_limit(gw: InProcess) -> None:
    response = await gw.config.post("/v1/spaces/acme/bundles", content=b"PK" + b"\0" * 5000)

    assert response.status_code == 400  # judged as a zip, not refused as a body
    assert "zip" in errors(response)


# -- JSON depth: 400 naming the limit on both APIs ----------------------------------------

DEPTH_ERROR = "JSON body is nested too deeply: the limit is 5 levels of arrays and objects"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/spaces/acme/eventtypes",
        "/v1/spaces/acme/functions",
        "/v1/spaces/acme/functions/f/invoke",
        "/v1/spaces/acme/deadletters/redrive",
    ],
)
async def test_config_bodies_nested_beyond_the_limit_are_a_400_naming_it(
    gw: InProcess, path: str
) -> None:
    response = await gw.config.post(path, content=json.dumps({"name": nested(5)}))

    assert response.status_code == 400
    assert errors(response) == DEPTH_ERROR


async def test_ten_thousand_nested_arrays_are_a_400_on_both_apis(gw: InProcess) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    # Within the body limit, to reach the depth check: the default limits.
    async with in_process_gateway() as gateway:
        config = await gateway.config.post("/v1/spaces/acme/eventtypes", content=deep)
        events = await gateway.events.post(
            "/acme/", content=deep, headers={"content-type": "application/json"}
        )

    for response in (config, events):
        assert response.status_code == 400
        assert "the limit is 64 levels" in errors(response)


async def test_events_nested_up_to_the_limit_are_accepted(gw: InProcess) -> None:
    event = {**CE10, "data": nested(4)}

    response = await gw.events.post(
        "/acme/", json=event, headers={"content-type": "application/cloudevents+json"}
    )

    assert response.status_code == 202


async def test_events_nested_beyond_the_limit_are_a_400_naming_it(gw: InProcess) -> None:
    event = {**CE10, "data": nested(5)}

    response = await gw.events.post(
        "/acme/", json=event, headers={"content-type": "application/cloudevents+json"}
    )

    assert response.status_code == 400
    assert errors(response) == DEPTH_ERROR


# -- batches: 413 naming the limit --------------------------------------------------------


async def test_a_batch_at_the_limit_is_accepted(gw: InProcess) -> None:
    response = await gw.events.post("/acme/", content=json.dumps([CE10, CE10]), headers=BATCH)

    assert response.status_code == 202


async def test_a_batch_over_the_limit_is_a_413_naming_it(gw: InProcess) -> None:
    response = await gw.events.post("/acme/", content=json.dumps([CE10] * 3), headers=BATCH)

    assert response.status_code == 413
    assert errors(response) == (
        "CloudEvents batch holds 3 events; the limit is 2 events per request: "
        "send them in smaller batches"
    )


# -- without the middleware: bodies too deep for the decoders are still 400s --------------

TOO_DEEP = b'{"ids": ' + b"[" * 5000 + b"]" * 5000 + b"}"


def test_an_invoke_body_too_deep_to_decode_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="Invoke body is not JSON"):
        invoke_body(TOO_DEEP)


async def test_a_redrive_body_too_deep_to_decode_is_a_400() -> None:
    queue = MemoryQueue(max_deliveries=10, max_bytes=10_000, dedup_window_s=1.0, lease_s=1.0)
    await queue.open()
    transport = httpx.ASGITransport(app=create_deliveries_app(queue, RoutingTable.empty))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/v1/spaces/acme/deadletters/redrive", content=TOO_DEEP)
    await queue.close()

    assert response.status_code == 400
    assert errors(response).startswith("Redrive body is not valid: ")


# -- numbers from the client that int() cannot take ---------------------------------------


async def call_events(gw: InProcess, content_length: bytes) -> int:
    """The Events API's status for a Content-Length that uvicorn would have refused."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/acme/",
        "raw_path": b"/acme/",
        "query_string": b"",
        "headers": [(b"content-length", content_length)],
        "server": ("127.0.0.1", 4000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"x", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await gw.gateway.events_app(scope, receive, send)
    return int(sent[0]["status"])


async def test_content_lengths_int_cannot_read_are_no_500() -> None:
    async with in_process_gateway() as gw:  # default limits: 5,000 digits fit in the headers
        assert await call_events(gw, b"1" * 5000) == 413  # more digits than any limit
        assert await call_events(gw, "²".encode("latin-1")) == 202  # no number: read the body
        response = await gw.config.post(
            "/v1/spaces/acme/eventtypes", content=b"{}", headers={"content-length": "1" * 5000}
        )

    assert response.status_code == 413


@pytest.mark.parametrize(
    "query",
    [
        "before=99999999999999999999",  # over SQLite's 2**63 - 1 (found by schemathesis)
        "before=" + "1" * 5000,  # over int()'s 4,300 digits
        "limit=" + "1" * 5000,
    ],
)
async def test_numbers_too_big_for_the_store_are_a_400(gw: InProcess, query: str) -> None:
    response = await gw.config.get(f"/v1/spaces/acme/events?{query}")

    assert response.status_code == 400
    assert "must be" in errors(response)
