"""Isolation matrix: a key of space A against every Configuration API route of space B.

The routes are read from the Starlette apps the gateway actually serves (walking its
Configuration API stack), so a route added later is covered without touching this file.
"""

from __future__ import annotations

import re
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from eventgateway.app import Gateway
from tests.api.support_config import errors
from tests.auth.authkit import AuthGateway, auth_gateway, bearer
from tests.support.receiver import Receiver

A, B, UNCLAIMED = "acme", "globex", "initech"
PUBLIC = {
    ("GET", "/v1/status"),
    ("HEAD", "/v1/status"),
    ("GET", "/v1/ready"),  # the readiness probe: load balancers send no key
    ("HEAD", "/v1/ready"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
}
PARAM = re.compile(r"\{(\w+)(:\w+)?\}")


def served_routes(gateway: Gateway) -> list[tuple[str, str]]:
    """(method, path template) of every route of the Configuration API stack."""
    found: set[tuple[str, str]] = set()
    seen: set[int] = set()

    def walk(app: object) -> None:
        if id(app) in seen or isinstance(app, Gateway):
            return
        seen.add(id(app))
        if isinstance(app, Starlette):
            for route in app.routes:
                assert isinstance(route, Route), route
                found.update((method, route.path) for method in route.methods or ())
            return
        for value in vars(app).values() if hasattr(app, "__dict__") else ():
            if callable(value) and not isinstance(
                value, (types.FunctionType, types.MethodType, type)
            ):
                walk(value)

    walk(gateway.config_app)
    return sorted(found)


def concrete(template: str, space: str) -> str:
    return PARAM.sub(lambda m: space if m.group(1) == "space" else "x", template)


@dataclass
class Tenants:
    gw: AuthGateway
    a: str  # admin key of A (every scope)
    b: str  # admin key of B
    b_event_id: str


@pytest.fixture
async def tenants(receiver: Receiver) -> AsyncIterator[Tenants]:
    async with auth_gateway() as gw:
        a = (await gw.claim(A))["apiKey"]
        b = (await gw.claim(B))["apiKey"]
        for space, key in ((A, a), (B, b)):
            fn = {
                "functionId": f"{space}-fn",
                "type": "http",
                "provider": {"url": receiver.url("/")},
            }
            await gw.create(space, "functions", fn, key)
            await gw.create(space, "eventtypes", {"name": "user.created"}, key)
            await gw.create(
                space,
                "subscriptions",
                {
                    "type": "async",
                    "eventType": "user.created",
                    "functionId": f"{space}-fn",
                    "path": f"/{space}/x",
                },
                key,
            )
            await gw.create(space, "cors", {"method": "POST", "path": f"/{space}/x"}, key)
        emitted = await gw.events.post(
            f"/{B}/x",
            json={
                "specversion": "1.0",
                "id": "b-secret-event",
                "source": "/b",
                "type": "user.created",
                "data": {"who": "globex-only"},
            },
            headers={"Content-Type": "application/cloudevents+json"},
        )
        assert emitted.status_code == 202, emitted.text
        yield Tenants(gw, a, b, "b-secret-event")


def test_the_walk_finds_every_family_of_routes(tenants: Tenants):
    paths = {path for _, path in served_routes(tenants.gw.gateway)}

    for expected in (
        "/v1/spaces/{space}/functions/{rest:rest}",
        "/v1/spaces/{space}/cors/{rest:rest}",
        "/v1/spaces/{space}/events/{id:rest}",
        "/v1/spaces/{space}/deadletters/redrive",
        "/v1/spaces/{space}/events/replay",
        "/v1/spaces/{space}/bundles",
        "/v1/spaces/{space}/functions/{functionId}/logs/stream",
        "/v1/spaces/{space}/functions/{functionId}/invoke",
        "/v1/spaces/{space}/keys/{keyId}",
        "/v1/spaces/{space}",
        "/v1/metrics",
    ):
        assert expected in paths, expected


async def test_a_key_of_a_gets_404_on_every_route_of_b_and_never_its_data(tenants: Tenants):
    gw = tenants.gw
    answers = {}
    for method, template in served_routes(gw.gateway):
        if "{space}" not in template:
            continue
        for space in (B, UNCLAIMED):
            response = await gw.config.request(
                method, concrete(template, space), json={}, headers=bearer(tenants.a)
            )
            answers[(method, template, space)] = response
            assert response.status_code == 404, (method, template, space, response.text)
            if method != "HEAD":
                assert errors(response) == (
                    f'Space "{space}" not found. Use a key of that space, or claim it: '
                    f"eg spaces claim {space}"
                )
            assert "globex-only" not in response.text
            assert "globex-fn" not in response.text
    assert len(answers) > 40
    # Nothing changed in B: its configuration and keys are as they were.
    listed = await gw.config.get(f"/v1/spaces/{B}/functions", headers=bearer(tenants.b))
    assert [f["functionId"] for f in listed.json()["functions"]] == ["globex-fn"]
    keys = await gw.config.get(f"/v1/spaces/{B}/keys", headers=bearer(tenants.b))
    assert len(keys.json()["keys"]) == 1


async def test_no_key_is_401_on_every_route_but_the_public_ones_and_claiming(tenants: Tenants):
    gw = tenants.gw
    for method, template in served_routes(gw.gateway):
        if (method, template) in PUBLIC or (method, template) == ("POST", "/v1/spaces"):
            continue
        response = await gw.config.request(method, concrete(template, B), json={})
        assert response.status_code == 401, (method, template, response.text)
        assert response.headers["www-authenticate"] == 'Bearer realm="eventgateway"'


async def test_no_key_for_a_claimed_space_says_it_is_claimed_not_claim_it(tenants: Tenants):
    # QA: with the key saved by `eg` for another address of the gateway, the advice to
    # "claim a space" was wrong: the space is claimed, the key was just not sent.
    gw = tenants.gw
    claimed = await gw.config.get(f"/v1/spaces/{B}/functions")
    unclaimed = await gw.config.get("/v1/spaces/nobody-yet/functions")

    assert claimed.status_code == unclaimed.status_code == 401
    assert errors(claimed).startswith(f'Missing API key: space "{B}" is claimed; send')
    assert "pass --api-key or EG_API_KEY" in errors(claimed)
    assert errors(unclaimed).endswith("To get a key, claim a space: eg spaces claim NAME")


async def test_the_operator_key_reaches_every_space(tenants: Tenants):
    gw = tenants.gw
    for space in (A, B):
        listed = await gw.config.get(f"/v1/spaces/{space}/functions", headers=gw.operator)
        assert [f["functionId"] for f in listed.json()["functions"]] == [f"{space}-fn"]


async def test_lists_logs_and_the_delivery_log_of_a_show_nothing_of_b(tenants: Tenants):
    gw, key = tenants.gw, bearer(tenants.a)
    bodies = []
    for resource in ("functions", "eventtypes", "subscriptions", "cors", "events", "deadletters"):
        response = await gw.config.get(f"/v1/spaces/{A}/{resource}", headers=key)
        assert response.status_code == 200, response.text
        bodies.append(response.text)
    for body in bodies:
        assert B not in body
        assert tenants.b_event_id not in body
        assert "globex-only" not in body
    # Asking A's space for B's things by name finds nothing (the names are only echoed).
    event = await gw.config.get(f"/v1/spaces/{A}/events/{tenants.b_event_id}", headers=key)
    function = await gw.config.get(f"/v1/spaces/{A}/functions/{B}-fn", headers=key)
    logs = await gw.config.get(f"/v1/spaces/{A}/functions/{B}-fn/logs", headers=key)
    assert (event.status_code, function.status_code) == (404, 404)
    assert logs.status_code in (200, 404)
    assert "globex-only" not in logs.text
    assert "START" not in logs.text
    # B itself does see its event: the refusals above are isolation, not a missing event.
    own = await gw.config.get(
        f"/v1/spaces/{B}/events/{tenants.b_event_id}", headers=bearer(tenants.b)
    )
    assert own.status_code == 200


async def test_a_key_of_a_cannot_list_or_claim_its_way_into_b(tenants: Tenants):
    gw = tenants.gw

    listed = await gw.config.get("/v1/spaces", headers=bearer(tenants.a))
    claim = await gw.config.post("/v1/spaces", json={"name": B}, headers=bearer(tenants.a))
    metrics = await gw.config.get("/v1/metrics", headers=bearer(tenants.a))
    keyless = await gw.config.get("/v1/metrics")

    assert [s["name"] for s in listed.json()["spaces"]] == [A]
    assert claim.status_code == 409
    assert metrics.status_code == 403
    assert errors(metrics) == "Only the operator key may use /v1/metrics."
    # Without a key, the hint is the operator key's, not a space's ("claim a space").
    assert keyless.status_code == 401
    assert errors(keyless).startswith('Missing API key: send "Authorization: Bearer <operator')
    assert "<data-dir>/operator.key" in errors(keyless)
    assert "claim" not in errors(keyless)


async def test_an_event_sent_to_a_never_reaches_bs_function(tenants: Tenants, receiver: Receiver):
    gw = tenants.gw
    # B cannot even subscribe to A's path (path isolation) …
    stolen = await gw.config.post(
        f"/v1/spaces/{B}/subscriptions",
        json={
            "type": "async",
            "eventType": "user.created",
            "functionId": f"{B}-fn",
            "path": f"/{A}/x",
        },
        headers=bearer(tenants.b),
    )
    assert stolen.status_code == 400
    # … so A's event is delivered to A's function only.
    response = await gw.events.post(
        f"/{A}/x",
        json={"specversion": "1.0", "id": "a-1", "source": "/a", "type": "user.created"},
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202
    seen_b = await gw.config.get(f"/v1/spaces/{B}/events/a-1", headers=bearer(tenants.b))
    seen_a = await gw.config.get(f"/v1/spaces/{A}/events/a-1", headers=bearer(tenants.a))
    assert seen_b.status_code == 404
    assert seen_a.status_code == 200
    assert {d["subscriptionId"] for d in seen_a.json()["deliveries"]} == {
        s["subscriptionId"]
        for s in (
            await gw.config.get(f"/v1/spaces/{A}/subscriptions", headers=bearer(tenants.a))
        ).json()["subscriptions"]
    }


async def test_an_empty_space_segment_is_an_unknown_route(tenants: Tenants):
    # QA: /v1/spaces//acme/functions answered 'Space "" not found … eg spaces claim ' ;
    # then a JSON 404, where an unknown route is the contract's plain-text one (§3).
    gw = tenants.gw
    for headers in (bearer(tenants.a), {}):
        response = await gw.config.get("/v1/spaces//acme/functions", headers=headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.text == "404 page not found\n"
