"""Scope matrix: keys holding only ``read``, ``emit`` or ``admin`` × every route of their space.

GET/HEAD need ``read`` (``admin`` implies it), every write needs ``admin``, and so does
everything under ``…/keys``. A refusal is 403 naming the scope; an admitted request gets
whatever the route answers (never 401/403).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.support_config import errors
from tests.auth.authkit import AuthGateway, auth_gateway, bearer
from tests.auth.test_isolation import concrete, served_routes

SPACE = "acme"
# Makes the log stream answer 400 instead of streaming forever; other routes ignore it.
CHEAP = "?since=not-a-time"


def needed_scope(method: str, template: str) -> str:
    if template.startswith("/v1/spaces/{space}/keys"):
        return "admin"
    return "read" if method in ("GET", "HEAD") else "admin"


@pytest.fixture
async def gw() -> AsyncIterator[AuthGateway]:
    async with auth_gateway() as gateway:
        admin = (await gateway.claim(SPACE))["apiKey"]
        # Not empty, so DELETE /v1/spaces/acme is refused rather than carried out.
        await gateway.create(SPACE, "eventtypes", {"name": "user.created"}, admin)
        yield gateway


@pytest.mark.parametrize("scope", ["read", "emit", "admin"])
async def test_each_scope_reaches_exactly_its_routes(gw: AuthGateway, scope: str):
    key = await gw.key(SPACE, scope)
    checked = 0
    for method, template in served_routes(gw.gateway):
        if "{space}" not in template:
            continue
        needed = needed_scope(method, template)
        allowed = scope == needed or (scope == "admin" and needed == "read")
        response = await gw.config.request(
            method, concrete(template, SPACE) + CHEAP, json={}, headers=bearer(key)
        )
        if allowed:
            assert response.status_code not in (401, 403), (scope, method, template, response.text)
            assert "Use a key of that space" not in response.text
        else:
            assert response.status_code == 403, (scope, method, template, response.text)
            if method != "HEAD":
                assert (
                    errors(response) == f'This key lacks the "{needed}" scope in space "{SPACE}".'
                )
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_bearer_scheme_is_read_in_any_case(gw: AuthGateway, scheme: str):
    key = await gw.key(SPACE, "read")

    response = await gw.config.get(f"/v1/spaces/{SPACE}/eventtypes", headers=bearer(key, scheme))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", 'The Authorization header must read "Bearer <key>".'),
        ("Bearer", 'The Authorization header must read "Bearer <key>".'),
        (
            "Bearer egk_0123456789abcdef_" + "0" * 48,
            "Invalid API key: it is unknown, revoked or expired.",
        ),
        ("Bearer not-a-key", "Invalid API key: it is unknown, revoked or expired."),
    ],
)
async def test_bad_credentials_are_401_without_echoing_them(
    gw: AuthGateway, header: str, message: str
):
    response = await gw.config.get(
        f"/v1/spaces/{SPACE}/eventtypes", headers={"Authorization": header}
    )

    assert response.status_code == 401
    assert errors(response) == message
    assert header.split(" ")[-1] not in response.text or header == "Bearer"


async def test_the_emit_scope_is_for_the_events_api_only(gw: AuthGateway):
    key = await gw.key(SPACE, "emit")

    response = await gw.config.get(f"/v1/spaces/{SPACE}", headers=bearer(key))

    assert response.status_code == 403
    assert errors(response) == f'This key lacks the "read" scope in space "{SPACE}".'


async def test_status_and_openapi_are_public_metrics_are_the_operators(gw: AuthGateway):
    assert (await gw.config.get("/v1/status")).status_code == 200
    assert (await gw.config.get("/openapi.json")).status_code == 200
    assert (await gw.config.get("/v1/metrics")).status_code == 401
    metrics = await gw.config.get("/v1/metrics", headers=gw.operator)
    assert metrics.status_code == 200
    assert "eventgateway" in metrics.text


async def test_unknown_routes_are_the_operators_too(gw: AuthGateway):
    assert (await gw.config.get("/v2/anything")).status_code == 401
    assert (await gw.config.get("/v2/anything", headers=gw.operator)).status_code == 404


async def test_claim_policy_operator_needs_the_operator_key():
    async with auth_gateway(claim_policy="operator") as gw:
        anonymous = await gw.config.post("/v1/spaces", json={"name": SPACE})
        other = (
            await gw.config.post("/v1/spaces", json={"name": "globex"}, headers=gw.operator)
        ).json()
        with_space_key = await gw.config.post(
            "/v1/spaces", json={"name": SPACE}, headers=bearer(other["apiKey"])
        )
        operator = await gw.config.post("/v1/spaces", json={"name": SPACE}, headers=gw.operator)

    assert anonymous.status_code == 401
    # Not "to get a key, claim a space": claiming is what this gateway refuses.
    assert errors(anonymous) == (
        "Missing API key. Only the operator key may claim spaces on this gateway (claim "
        'policy "operator").'
    )
    assert with_space_key.status_code == 403
    assert errors(with_space_key) == (
        'Only the operator key may claim spaces on this gateway (claim policy "operator").'
    )
    assert operator.status_code == 201


async def test_under_the_open_policy_a_stray_key_does_not_block_a_claim(gw: AuthGateway):
    response = await gw.config.post(
        "/v1/spaces", json={"name": "globex"}, headers=bearer("egk_0123456789abcdef_" + "0" * 48)
    )

    assert response.status_code == 201
