"""Path isolation: in auth mode a space subscribes and sets CORS only under ``/<space>``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.api.support_config import errors
from tests.auth.authkit import AuthGateway, auth_gateway, bearer

FUNCTION = {"functionId": "fn", "type": "http", "provider": {"url": "http://127.0.0.1:9/"}}


@dataclass
class Space:
    gw: AuthGateway
    key: str


async def prepare(gw: AuthGateway, name: str, headers: dict[str, str] | None) -> None:
    for resource, body in (("functions", FUNCTION), ("eventtypes", {"name": "user.created"})):
        response = await gw.config.post(f"/v1/spaces/{name}/{resource}", json=body, headers=headers)
        assert response.status_code == 201, response.text


@pytest.fixture
async def acme() -> AsyncIterator[Space]:
    async with auth_gateway() as gw:
        key = (await gw.claim("acme"))["apiKey"]
        await prepare(gw, "acme", bearer(key))
        yield Space(gw, key)


def subscription(path: str, type_: str = "async") -> dict[str, str]:
    return {"type": type_, "eventType": "user.created", "functionId": "fn", "path": path}


@pytest.mark.parametrize("path", ["/acme", "/acme/", "/acme/users", "/acme/users/:id", "acme/x"])
async def test_paths_under_the_space_are_accepted(acme: Space, path: str):
    for type_ in ("async", "sync"):
        response = await acme.gw.config.post(
            "/v1/spaces/acme/subscriptions",
            json=subscription(path, type_),
            headers=bearer(acme.key),
        )
        assert response.status_code == 201, (path, type_, response.text)


@pytest.mark.parametrize(
    "path", ["/", "/other", "/acmex", "/acme-crm/x", "/:space/x", "/*all", "/ACME/x"]
)
async def test_paths_outside_the_space_are_400_with_the_hosted_message(acme: Space, path: str):
    response = await acme.gw.config.post(
        "/v1/spaces/acme/subscriptions", json=subscription(path), headers=bearer(acme.key)
    )

    assert response.status_code == 400
    assert errors(response).startswith(
        "Subscription path has to be prefixed with space name (/acme)"
    )


async def test_cors_follows_the_same_rule(acme: Space):
    outside = await acme.gw.config.post(
        "/v1/spaces/acme/cors",
        json={"method": "GET", "path": "/globex/x"},
        headers=bearer(acme.key),
    )
    inside = await acme.gw.config.post(
        "/v1/spaces/acme/cors", json={"method": "GET", "path": "/acme/x"}, headers=bearer(acme.key)
    )

    assert outside.status_code == 400
    assert errors(outside).startswith("CORS path has to be prefixed with space name (/acme)")
    assert inside.status_code == 201


async def test_the_operator_may_use_any_path(acme: Space):
    operator = acme.gw.operator

    response = await acme.gw.config.post(
        "/v1/spaces/acme/subscriptions", json=subscription("/webhooks"), headers=operator
    )
    cors = await acme.gw.config.post(
        "/v1/spaces/acme/cors", json={"method": "GET", "path": "/"}, headers=operator
    )

    assert response.status_code == 201
    assert cors.status_code == 201


async def test_without_auth_mode_any_path_is_accepted_as_in_the_original():
    async with auth_gateway(auth=False) as gw:
        await prepare(gw, "acme", None)

        response = await gw.config.post(
            "/v1/spaces/acme/subscriptions", json=subscription("/other")
        )

    assert response.status_code == 201
