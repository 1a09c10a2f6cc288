"""Sync routes as the original's Go server answered them (QA's findings on contract §2.1, §2.5)."""

from __future__ import annotations

import asyncio
import pathlib

from eventgateway.settings import Limits
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver, Reply

ORIGIN = "https://app.example"


async def sync_route(gw: InProcess, receiver: Receiver, path: str = "/acme/x", method: str = "GET"):
    await gw.http_function("f", receiver.url("/f"))
    await gw.event_type("http.request")
    await gw.subscribe(
        type="sync", eventType="http.request", functionId="f", path=path, method=method
    )


async def test_a_header_the_function_sets_replaces_the_gateways_cors_header(receiver: Receiver):
    # Go's rs/cors wrote its headers first, then Header().Set of each function header:
    # two Access-Control-Allow-Origin values made browsers refuse the response.
    receiver.reply_json(
        "/f", {"headers": {"Access-Control-Allow-Origin": ORIGIN, "Vary": "Accept"}, "body": "ok"}
    )
    async with in_process_gateway() as gw:
        await sync_route(gw, receiver)
        await gw.create("cors", {"method": "GET", "path": "/acme/x", "allowedOrigins": ["*"]})
        response = await gw.events.get("/acme/x", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert response.headers.get_list("vary") == ["Accept"]


async def test_header_values_go_out_as_utf8_and_invalid_text_as_replacement_characters(
    receiver: Receiver,
):
    body = b'{"headers":{"X-Price":"5 \\u20ac","X-Name":"caf\\u00e9"},"body":"caf\xe9 \\ud800"}'
    receiver.reply("/f", Reply(body=body))
    async with in_process_gateway() as gw:
        await sync_route(gw, receiver)
        response = await gw.events.get("/acme/x")
    assert response.status_code == 200
    raw = dict(response.headers.raw)
    assert raw[b"x-price"] == "5 €".encode()
    assert raw[b"x-name"] == "café".encode()
    assert response.content == "caf\ufffd \ufffd".encode()


async def test_an_invalid_percent_escape_in_the_path_is_400(receiver: Receiver):
    receiver.reply_json("/f", {"body": "reached"})
    async with in_process_gateway() as gw:
        await sync_route(gw, receiver, path="/acme/users/:id")
        bad = await gw.events.get("/acme/users/%zz")
        good = await gw.events.get("/acme/users/%41")
    assert bad.status_code == 400
    assert bad.json() == {
        "errors": [{"message": 'The request path has an invalid percent-escape "%zz".'}]
    }
    assert (good.status_code, good.content) == (200, b"reached")
    assert len(receiver.calls) == 1


async def test_a_preflight_is_looked_up_by_the_requested_method_as_sent(receiver: Receiver):
    # A lower-case "patch" finds no CORS configuration (the original's lookup): the OPTIONS
    # request is then an ordinary event, answered by its sync function.
    receiver.reply_json("/f", {"body": "function"})
    async with in_process_gateway() as gw:
        await sync_route(gw, receiver, method="OPTIONS")
        await gw.create(
            "cors",
            {
                "method": "PATCH",
                "path": "/acme/x",
                "allowedOrigins": ["*"],
                "allowedMethods": ["PATCH"],
            },
        )
        headers = {"Origin": ORIGIN}
        upper = await gw.events.options(
            "/acme/x", headers={**headers, "Access-Control-Request-Method": "PATCH"}
        )
        lower = await gw.events.options(
            "/acme/x", headers={**headers, "Access-Control-Request-Method": "patch"}
        )
    assert (upper.status_code, upper.content) == (200, b"")
    assert upper.headers["access-control-allow-methods"] == "PATCH"
    assert (lower.status_code, lower.content) == (200, b"function")
    assert "access-control-allow-methods" not in lower.headers


SLOW_HANDLER = """
import time

def handler(event, context):
    time.sleep(2)
    return {"statusCode": 200, "body": "done"}

def big(event, context):
    return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
"""


async def runtime_route(gw: InProcess, handler: str, path: str, **provider: object) -> None:
    """A python function running ``slow.<handler>`` of SLOW_HANDLER behind GET ``path``."""
    bundle_id = await gw.upload_bundle({"slow.py": SLOW_HANDLER})
    function = {"bundle": bundle_id, "handler": f"slow.{handler}", **provider}
    await gw.create("functions", {"functionId": handler, "type": "python", "provider": function})
    await gw.event_type("http.request")
    await gw.subscribe(
        type="sync", eventType="http.request", functionId=handler, path=path, method="GET"
    )


async def test_a_sync_call_waits_for_a_busy_runtime_function_no_longer_than_its_timeout(
    tmp_path: pathlib.Path,
):
    # QA: with every worker busy, sync calls queued without bound (8 s for the 8th), and
    # ran long after their clients had gone.
    limits = Limits(function_timeout_s=0.3)
    async with in_process_gateway(limits=limits, data_dir=tmp_path / "data") as gw:
        await runtime_route(gw, "handler", "/acme/s", concurrency=1)
        first, second = await asyncio.gather(gw.events.get("/acme/s"), gw.events.get("/acme/s"))
    assert sorted([first.status_code, second.status_code]) == [200, 500]


async def test_a_sync_reply_over_6_mib_fails_for_runtime_functions_as_for_http_ones(
    tmp_path: pathlib.Path,
):
    async with in_process_gateway(data_dir=tmp_path / "data") as gw:
        await runtime_route(gw, "big", "/acme/b")
        response = await gw.events.get("/acme/b")
    assert response.status_code == 500
    assert response.json() == {"errors": [{"message": "Function call failed. Please check logs."}]}
