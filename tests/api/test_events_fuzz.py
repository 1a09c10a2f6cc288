"""Fuzzing the Events API as uvicorn calls it: any request gets a 2xx or a 4xx, never 5xx.

Requests are ASGI scopes with arbitrary methods, raw paths, hosts (``--domain`` routing),
headers, query strings and bodies (sent in chunks), against a gateway that has async
subscriptions and a CORS configuration on the fuzzed space. No sync subscription: a
failing function is a deliberate 500 there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventgateway.settings import Limits
from tests.events.strategies import EVENTS, HEADER_NAMES, JSON, MEDIA_TYPES, NUMERIC_VALUES
from tests.support.inprocess import InProcess, in_process_gateway

# 429 (full queue, rate limit) and 503 (store failure) cannot happen with these settings.
ALLOWED = {200, 202, 400, 413, 431}


@pytest.fixture
async def gw() -> AsyncIterator[InProcess]:
    limits = Limits(max_body_bytes=2000, max_header_bytes=600, max_json_depth=6)
    async with in_process_gateway(domain="example.com", limits=limits) as gateway:
        await gateway.http_function("fn", "http://127.0.0.1:9/")
        for name in ("t", "user.created"):
            await gateway.event_type(name)
        for path in ("/acme/", "/acme/x"):
            await gateway.subscribe(type="async", eventType="t", functionId="fn", path=path)
        await gateway.subscribe(
            type="async", eventType="user.created", functionId="fn", path="/acme/",
            delivery="at-most-once",
        )  # fmt: skip
        await gateway.create("cors", {"method": "POST", "path": "/acme/", "allowedOrigins": ["*"]})
        yield gateway


@st.composite
def scopes(draw: st.DrawFn) -> tuple[dict[str, Any], list[bytes]]:
    raw_path = b"/" + draw(st.sampled_from([b"acme/", b"acme/x", b""]) | st.binary(max_size=16))
    values = st.binary(max_size=40) | NUMERIC_VALUES
    headers = draw(st.lists(st.tuples(HEADER_NAMES, values), max_size=6))
    if draw(st.booleans()):
        host = draw(st.sampled_from([b"acme.example.com", b"x.example.com:4000", b"[::1]:80"]))
        headers.append((b"host", host))
    if draw(st.booleans()):
        headers.append((b"content-type", draw(MEDIA_TYPES).encode("utf-8", "surrogateescape")))
    if draw(st.booleans()):
        headers += [(b"origin", b"https://a.example"), (b"access-control-request-method", b"POST")]
    if draw(st.booleans()):
        headers.append((b"content-length", draw(NUMERIC_VALUES)))
    value = draw(st.one_of(EVENTS, st.lists(EVENTS, max_size=3), JSON))
    body = draw(st.just(json.dumps(value).encode()) | st.binary(max_size=100))
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": draw(st.sampled_from(["GET", "POST", "PUT", "OPTIONS", "DELETE", "X-Y"])),
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": draw(st.binary(max_size=16)),
        "headers": headers,
        "server": ("127.0.0.1", 4000),
        "client": ("127.0.0.1", 50000),
    }
    return scope, [body[:cut], body[cut:]]


async def call(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, bytes, dict]:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, *rest = sent
    headers = {name.decode(): value.decode("latin-1") for name, value in start["headers"]}
    return start["status"], b"".join(m.get("body", b"") for m in rest), headers


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=scopes())
async def test_any_request_is_answered_2xx_or_4xx_with_contract_errors(
    gw: InProcess, request: tuple[dict[str, Any], list[bytes]]
) -> None:
    scope, chunks = request

    status, body, headers = await call(gw.gateway.events_app, scope, chunks)

    assert status in ALLOWED, (status, body)
    if status >= 400:
        assert headers["content-type"] == "application/json"
        problem = json.loads(body)
        assert list(problem) == ["errors"]
        [error] = problem["errors"]
        assert list(error) == ["message"]
        assert isinstance(error["message"], str)
