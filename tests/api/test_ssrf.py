"""The SSRF guard through a whole gateway: a 400 at registration, a dead letter at delivery.

Receivers listen on 127.0.0.1; "refused without traffic" means the receiver got nothing and
the connect spy (tests/support/outbound.py, loopback only) saw no connect. The delivery
tests run both dispatch modes: in ``process`` mode a real ``eg _callworker`` child makes the
calls with the policy it was started with.
"""

from __future__ import annotations

import asyncio
import ipaddress
import pathlib
import re
import time
from typing import Any

import pytest

from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.outbound import ConnectSpy, MapResolver
from tests.support.receiver import Receiver

PUBLIC = "93.184.216.34"  # never connected to: the spy lets only loopback through
STRUCTURED = {"content-type": "application/cloudevents+json"}
ONE_ATTEMPT = {"maxAttempts": 3, "initialDelayMs": 20, "jitter": False}


@pytest.fixture
async def spy(monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
    loop = asyncio.get_running_loop()
    recorder = ConnectSpy(loop)
    monkeypatch.setattr(loop, "sock_connect", recorder.sock_connect)
    return recorder


def function_body(url: str) -> dict[str, Any]:
    return {"functionId": "fn", "type": "http", "provider": {"url": url}}


async def register(gw: InProcess, url: str) -> Any:
    return await gw.config.post("/v1/spaces/acme/functions", json=function_body(url))


def message(response: Any) -> str:
    return str(response.json()["errors"][0]["message"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://127.0.0.1:{port}/f",
            "target 127.0.0.1 (for http://127.0.0.1:{port}/f) is a loopback",
        ),
        ("http://[::1]:{port}/f", "target ::1 (for http://[::1]:{port}/f) is a loopback"),
        ("http://169.254.169.254/latest/meta-data/", "target 169.254.169.254 (for "),
        ("http://10.0.0.1/hook", "target 10.0.0.1 (for http://10.0.0.1/hook) is a private"),
    ],
)
async def test_registration_refuses_a_refused_literal_with_a_400_naming_the_field(
    spy: ConnectSpy, receiver: Receiver, url: str, reason: str
):
    resolver = MapResolver({})
    async with in_process_gateway(private_targets="deny", resolver=resolver) as gw:
        response = await register(gw, url.format(port=receiver.port))
        listed = (await gw.config.get("/v1/spaces/acme/functions")).json()

    assert response.status_code == 400
    assert message(response).startswith("provider.url: " + reason.format(port=receiver.port))
    assert "refused by the SSRF guard (allow it with --allow-target" in message(response)
    assert listed["functions"] == []
    assert (spy.addresses, resolver.asked, receiver.calls) == ([], [], [])


async def test_registration_refuses_a_name_that_resolves_only_to_refused_addresses(
    spy: ConnectSpy,
):
    resolver = MapResolver({"intranet.example": ["10.1.2.3", "fd00::5"]})
    async with in_process_gateway(private_targets="deny", resolver=resolver) as gw:
        created = await register(gw, "http://intranet.example/f")
        localhost = await gw.config.put(
            "/v1/spaces/acme/functions/fn", json=function_body("http://intranet.example/g")
        )

    assert created.status_code == 400
    assert message(created).startswith(
        "provider.url: target 10.1.2.3 (for http://intranet.example/f) is a private address"
    )
    assert localhost.status_code == 400  # an update is checked the same way
    assert spy.addresses == []


async def test_registration_refuses_localhost_through_the_system_resolver():
    async with in_process_gateway(private_targets="deny") as gw:
        response = await register(gw, "http://localhost:8080/f")

    assert response.status_code == 400
    assert "is a loopback address" in message(response)


@pytest.mark.parametrize(
    "names",
    [
        {},  # does not resolve (yet): not an error, delivery checks again
        {"svc.example": ["10.0.0.7", PUBLIC]},  # delivery will use the public address only
    ],
)
async def test_registration_accepts_names_that_may_reach_a_public_address(
    names: dict[str, list[str]],
):
    async with in_process_gateway(private_targets="deny", resolver=MapResolver(names)) as gw:
        response = await register(gw, "http://svc.example/f")

    assert response.status_code == 201, response.text


async def test_open_mode_registers_private_targets(receiver: Receiver):
    async with in_process_gateway() as gw:  # no auth: private targets follow the open default
        assert gw.gateway.settings.target_policy.is_open
        assert (await register(gw, "http://10.0.0.1/f")).status_code == 201
        assert (await register(gw, "http://169.254.169.254/")).status_code == 409  # exists


# -- delivery -------------------------------------------------------------------------------


async def subscribe(gw: InProcess, url: str) -> None:
    response = await register(gw, url)
    assert response.status_code == 201, response.text
    await gw.event_type("user.created")
    await gw.subscribe(
        type="async",
        eventType="user.created",
        functionId="fn",
        path="/acme",
        retryPolicy=ONE_ATTEMPT,
    )


async def emit(gw: InProcess) -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "user.created"}
    emitted = await gw.events.post("/acme", json=event, headers=STRUCTURED)
    assert emitted.status_code == 202, emitted.text


async def settled(gw: InProcess, timeout_s: float = 15.0) -> dict[str, Any]:
    """The event's view once its delivery is delivered or dead (settling is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = (await gw.config.get("/v1/spaces/acme/events/e-1")).json()
        if view.get("state") in ("delivered", "dead"):
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.02)


async def dead_letter(gw: InProcess) -> dict[str, Any]:
    [letter] = (await gw.config.get("/v1/spaces/acme/deadletters")).json()["deadLetters"]
    return dict(letter)


@pytest.fixture(params=["inline", "process"])
def dispatch(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> dict[str, Any]:
    if request.param == "inline":
        return {"dispatch": "inline"}
    return {"dispatch": "process", "data_dir": tmp_path / "data", "shutdown_timeout_s": 5.0}


async def test_dns_change_after_registration_is_refused_at_delivery_without_traffic(
    spy: ConnectSpy, receiver: Receiver, dispatch: dict[str, Any]
):
    # Registration sees a public address. At delivery the name is loopback: in inline mode
    # because the resolver's answer changed (DNS rebinding); in process mode because the
    # worker process asks the system resolver, where localhost is loopback (had this process
    # made the call, it would have gone to the public address: the spy would refuse it).
    resolver = MapResolver({"localhost": [PUBLIC]})
    async with in_process_gateway(private_targets="deny", resolver=resolver, **dispatch) as gw:
        assert (gw.gateway.worker is not None) == (dispatch["dispatch"] == "process")
        url = f"http://localhost:{receiver.port}/f"
        await subscribe(gw, url)
        if dispatch["dispatch"] == "inline":
            resolver.names["localhost"] = ["127.0.0.1"]
        await emit(gw)
        view = await settled(gw)
        letter = await dead_letter(gw)

    assert view["state"] == "dead"
    assert letter["attempts"] == 1  # not retryable
    assert re.search(
        rf"target (127\.0\.0\.1|::1) \(for {re.escape(url)}\) is a loopback", letter["reason"]
    )
    assert "refused by the SSRF guard" in letter["reason"]
    assert receiver.calls == []
    assert spy.addresses == []


async def test_an_allow_listed_address_is_delivered_to(
    spy: ConnectSpy, receiver: Receiver, dispatch: dict[str, Any]
):
    allowed = (ipaddress.ip_network("127.0.0.1/32"),)
    async with in_process_gateway(
        private_targets="deny", allowed_targets=allowed, **dispatch
    ) as gw:
        await subscribe(gw, receiver.url("/f"))
        await emit(gw)
        [call] = await receiver.wait_for(1, "/f")
        view = await settled(gw)

    assert call.json()["id"] == "e-1"
    assert view["state"] == "delivered"


async def test_open_mode_delivers_to_private_targets(receiver: Receiver, dispatch: dict[str, Any]):
    async with in_process_gateway(private_targets="allow", **dispatch) as gw:
        await subscribe(gw, f"http://localhost:{receiver.port}/f")
        await emit(gw)
        await receiver.wait_for(1, "/f")


async def test_a_sync_route_to_a_refused_target_sends_nothing(spy: ConnectSpy, receiver: Receiver):
    resolver = MapResolver({"svc.example": [PUBLIC]})
    async with in_process_gateway(private_targets="deny", resolver=resolver) as gw:
        assert (await register(gw, f"http://svc.example:{receiver.port}/f")).status_code == 201
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="fn", path="/acme", method="GET"
        )
        resolver.names["svc.example"] = ["127.0.0.1"]
        response = await gw.events.get("/acme")

    assert response.status_code == 500  # the original's answer to any failed sync call
    assert receiver.calls == []
    assert spy.addresses == []
