"""Spaces and keys over HTTP: claim, read, change, delete; create, list, revoke keys."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from eventgateway.settings import Limits
from tests.api.support_config import errors
from tests.auth.authkit import START_S, AuthGateway, auth_gateway, bearer

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
FUNCTION = {"functionId": "f", "type": "http", "provider": {"url": "http://127.0.0.1:9/"}}


@pytest.fixture
async def gw() -> AsyncIterator[AuthGateway]:
    async with auth_gateway() as gateway:
        yield gateway


async def test_claiming_answers_the_first_key_once_with_every_scope(gw: AuthGateway):
    response = await gw.config.post("/v1/spaces", json={"name": "acme"})

    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert list(body) == ["name", "apiKey", "keyId", "scopes", "emitRequiresKey", "createdAt"]
    assert body["name"] == "acme"
    assert re.fullmatch(r"egk_[0-9a-f]{16}_[0-9a-f]{48}", body["apiKey"])
    assert body["apiKey"].startswith(f"egk_{body['keyId']}_")
    assert body["scopes"] == ["admin", "emit", "read"]
    assert body["emitRequiresKey"] is False
    assert RFC3339.fullmatch(body["createdAt"])
    got = await gw.config.get("/v1/spaces/acme", headers=bearer(body["apiKey"]))
    assert got.json() == {"name": "acme", "emitRequiresKey": False, "createdAt": body["createdAt"]}
    assert "apiKey" not in got.text


async def test_a_claimed_space_cannot_be_claimed_again(gw: AuthGateway):
    await gw.claim("acme")

    again = await gw.config.post("/v1/spaces", json={"name": "acme"})
    by_operator = await gw.config.post("/v1/spaces", json={"name": "acme"}, headers=gw.operator)

    assert again.status_code == by_operator.status_code == 409
    assert errors(again) == 'Space "acme" already exists.'


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"name": "ab"}', "name 'ab' is not a valid space name"),
        (b'{"name": "a/b/c"}', "name 'a/b/c' is not a valid space name"),
        # Names become NATS subject tokens in cluster mode: 2,000 characters broke one.
        (b'{"name": "' + b"c" * 256 + b'"}', "is not a valid space name: use 3 to 255 characters"),
        (b'{"name": 3}', "$.name"),
        (b"{}", "name"),
        (b"", "The request body is empty"),
        (b'{"name": "acme", "emitRequiresKey": "yes"}', "$.emitRequiresKey"),
        (b"[", "Expected `object`, got `array`"),
        (b'{"name": ', "is not valid JSON: it ends before the JSON value is complete"),
        (b'{"name": "acme"} x', "is not valid JSON: trailing characters"),
        # Read as U+FFFD, as Go did (msgspec called a lone surrogate "truncated" input).
        (rb'{"name": "acme\ud800"}', "name 'acme\ufffd' is not a valid space name"),
    ],
)
async def test_a_bad_claim_is_400_naming_the_field(gw: AuthGateway, body: bytes, named: str):
    response = await gw.config.post("/v1/spaces", content=body)

    assert response.status_code == 400
    assert named in errors(response)


async def test_a_space_may_require_keys_for_emits_and_change_its_mind(gw: AuthGateway):
    key = (await gw.claim("acme", emitRequiresKey=True))["apiKey"]
    assert gw.gateway.keyring.space("acme").emit_requires_key is True  # type: ignore[union-attr]

    response = await gw.config.patch(
        "/v1/spaces/acme", json={"emitRequiresKey": False}, headers=bearer(key)
    )

    assert response.status_code == 200
    assert response.json()["emitRequiresKey"] is False
    assert gw.gateway.keyring.space("acme").emit_requires_key is False  # type: ignore[union-attr]


async def test_the_operator_lists_every_space_a_key_only_its_own(gw: AuthGateway):
    acme = (await gw.claim("acme"))["apiKey"]
    await gw.claim("globex")

    everyone = await gw.config.get("/v1/spaces", headers=gw.operator)
    own = await gw.config.get("/v1/spaces", headers=bearer(acme))

    assert [s["name"] for s in everyone.json()["spaces"]] == ["acme", "globex"]
    assert [s["name"] for s in own.json()["spaces"]] == ["acme"]


async def test_keys_are_listed_without_secrets_and_revoked_at_once(gw: AuthGateway):
    admin = (await gw.claim("acme"))["apiKey"]
    created = await gw.config.post(
        "/v1/spaces/acme/keys", json={"scopes": ["read", "emit"]}, headers=bearer(admin)
    )
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    issued = created.json()
    assert list(issued) == ["keyId", "apiKey", "scopes", "expiresAt", "createdAt"]
    assert issued["scopes"] == ["emit", "read"]
    assert issued["expiresAt"] is None

    listed = await gw.config.get("/v1/spaces/acme/keys", headers=bearer(admin))
    assert issued["keyId"] in [k["keyId"] for k in listed.json()["keys"]]
    assert "apiKey" not in listed.text
    assert issued["apiKey"].rsplit("_", 1)[1] not in listed.text
    assert "sha256" not in listed.text

    assert (
        await gw.config.get("/v1/spaces/acme/functions", headers=bearer(issued["apiKey"]))
    ).status_code == 200
    revoked = await gw.config.delete(
        f"/v1/spaces/acme/keys/{issued['keyId']}", headers=bearer(admin)
    )
    assert revoked.status_code == 204
    after = await gw.config.get("/v1/spaces/acme/functions", headers=bearer(issued["apiKey"]))
    assert after.status_code == 401
    assert errors(after) == "Invalid API key: it is unknown, revoked or expired."


async def test_the_last_admin_key_cannot_be_revoked(gw: AuthGateway):
    claimed = await gw.claim("acme")

    response = await gw.config.delete(
        f"/v1/spaces/acme/keys/{claimed['keyId']}", headers=bearer(claimed["apiKey"])
    )

    assert response.status_code == 400
    assert "last admin key" in errors(response)
    second = await gw.key("acme", "admin")
    assert (
        await gw.config.delete(f"/v1/spaces/acme/keys/{claimed['keyId']}", headers=bearer(second))
    ).status_code == 204


async def test_an_expired_admin_key_does_not_count_as_the_spare(gw: AuthGateway):
    claimed = await gw.claim("acme")
    await gw.key("acme", "admin", expires_at=START_S + 10)
    gw.clock.advance(10)

    response = await gw.config.delete(
        f"/v1/spaces/acme/keys/{claimed['keyId']}", headers=bearer(claimed["apiKey"])
    )

    assert response.status_code == 400


async def test_a_spare_that_expires_first_does_not_count(gw: AuthGateway):
    # Revoking the permanent key beside a short-lived spare would leave the space, once the
    # spare expired, with nobody to manage it.
    claimed = await gw.claim("acme")
    spare = await gw.key("acme", "admin", expires_at=START_S + 60)

    response = await gw.config.delete(
        f"/v1/spaces/acme/keys/{claimed['keyId']}", headers=bearer(spare)
    )

    assert response.status_code == 400
    assert "last admin key" in errors(response)
    spare_id = spare.split("_")[1]
    assert (  # the spare itself may go: the permanent key outlives it
        await gw.config.delete(f"/v1/spaces/acme/keys/{spare_id}", headers=bearer(spare))
    ).status_code == 204


async def test_unknown_keys_are_404(gw: AuthGateway):
    await gw.claim("acme")

    response = await gw.config.delete("/v1/spaces/acme/keys/0000000000000000", headers=gw.operator)

    assert response.status_code == 404
    assert errors(response) == 'Key "0000000000000000" not found.'


async def test_keys_expire_on_the_clock(gw: AuthGateway):
    await gw.claim("acme")
    expiring = await gw.key("acme", "read", expires_at="2027-01-15T08:01:40Z")  # START_S + 100
    key_id = expiring.split("_")[1]
    assert (await listed_key(gw, key_id))["expiresAt"] == "2027-01-15T08:01:40Z"

    gw.clock.advance(99)
    assert (
        await gw.config.get("/v1/spaces/acme/functions", headers=bearer(expiring))
    ).status_code == 200
    gw.clock.advance(1)
    assert (
        await gw.config.get("/v1/spaces/acme/functions", headers=bearer(expiring))
    ).status_code == 401
    assert (await listed_key(gw, key_id))["expired"] is True


async def listed_key(gw: AuthGateway, key_id: str) -> dict[str, object]:
    listed = (await gw.config.get("/v1/spaces/acme/keys", headers=gw.operator)).json()["keys"]
    [key] = [k for k in listed if k["keyId"] == key_id]
    return dict(key)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"scopes": []}, "scopes must name at least one"),
        ({"scopes": ["write"]}, "scopes has 'write'"),
        ({}, "scopes"),
        ({"scopes": ["read"], "expiresAt": "soon"}, "expiresAt 'soon' is not a time"),
        ({"scopes": ["read"], "expiresAt": START_S - 1}, "expiresAt is in the past"),
        ({"scopes": ["read"], "expiresAt": True}, "$.expiresAt"),
        # Past what RFC 3339 can write: these were stored, then every answer failed (500).
        ({"scopes": ["read"], "expiresAt": 1e300}, "expiresAt 1e+300 is too far in the future"),
        ({"scopes": ["read"], "expiresAt": 99999999999999999999}, "expiresAt 1e+20 is too far"),
        ({"scopes": ["read"], "expiresAt": 253402300800}, "the latest is 9999-12-31T23:59:59Z"),
        (
            {"scopes": ["read"], "expiresAt": "9999-12-31T23:59:59-01:00"},
            "expiresAt '9999-12-31T23:59:59-01:00' is too far in the future",
        ),
    ],
)
async def test_a_bad_key_request_is_400_naming_the_field(gw: AuthGateway, body: object, named: str):
    await gw.claim("acme")

    response = await gw.config.post("/v1/spaces/acme/keys", json=body, headers=gw.operator)

    assert response.status_code == 400
    assert named in errors(response)


async def test_a_key_may_expire_at_the_last_second_rfc_3339_can_write(gw: AuthGateway):
    await gw.claim("acme")

    response = await gw.config.post(
        "/v1/spaces/acme/keys",
        json={"scopes": ["read"], "expiresAt": 253402300799},
        headers=gw.operator,
    )

    assert response.status_code == 201
    assert response.json()["expiresAt"] == "9999-12-31T23:59:59Z"
    listed = await gw.config.get("/v1/spaces/acme/keys", headers=gw.operator)
    assert listed.status_code == 200


async def test_a_space_with_configuration_is_not_deleted(gw: AuthGateway):
    key = (await gw.claim("acme"))["apiKey"]
    await gw.create("acme", "functions", FUNCTION, key)

    response = await gw.config.delete("/v1/spaces/acme", headers=bearer(key))

    assert response.status_code == 400
    assert errors(response) == (
        'Space "acme" still holds configuration (1 functions); remove it first '
        "(eg remove in the service's directory)."
    )


async def test_deleting_a_space_ends_its_keys_and_keeps_the_name_for_the_operator(gw: AuthGateway):
    key = (await gw.claim("acme"))["apiKey"]

    assert (await gw.config.delete("/v1/spaces/acme", headers=bearer(key))).status_code == 204

    assert (await gw.config.get("/v1/spaces/acme", headers=bearer(key))).status_code == 401
    assert (await gw.config.get("/v1/spaces/acme", headers=gw.operator)).status_code == 404
    assert (await gw.config.get("/v1/spaces", headers=gw.operator)).json() == {"spaces": []}
    stranger = await gw.config.post("/v1/spaces", json={"name": "acme"})
    assert stranger.status_code == 409
    assert errors(stranger) == 'Space "acme" was deleted; only the operator may claim it again.'
    assert (
        await gw.config.post("/v1/spaces", json={"name": "acme"}, headers=gw.operator)
    ).status_code == 201


async def test_a_name_holding_unclaimed_configuration_is_the_operators_to_claim(gw: AuthGateway):
    await gw.config.post("/v1/spaces/legacy/functions", json=FUNCTION, headers=gw.operator)

    stranger = await gw.config.post("/v1/spaces", json={"name": "legacy"})
    operator = await gw.config.post("/v1/spaces", json={"name": "legacy"}, headers=gw.operator)

    assert stranger.status_code == 409
    assert "only the operator may claim it" in errors(stranger)
    assert operator.status_code == 201


async def test_trailing_slashes_redirect_like_the_other_routes(gw: AuthGateway):
    await gw.claim("acme")

    response = await gw.config.get("/v1/spaces/acme/", headers=gw.operator)

    assert response.status_code == 301
    assert response.headers["location"] == "/v1/spaces/acme"


async def test_without_auth_mode_anyone_may_claim_and_manage_keys():
    async with auth_gateway(auth=False) as gw:
        await gw.config.post("/v1/spaces/legacy/functions", json=FUNCTION)

        claimed = await gw.config.post("/v1/spaces", json={"name": "legacy"})
        listed = await gw.config.get("/v1/spaces/legacy/keys")

    assert claimed.status_code == 201
    assert listed.status_code == 200
    assert len(listed.json()["keys"]) == 1


async def test_openapi_describes_every_spaces_route_and_the_bearer_scheme(gw: AuthGateway):
    from eventgateway.api.spaces import create_spaces_app

    document = (await gw.config.get("/openapi.json")).json()
    app = create_spaces_app(None, auth=True)  # type: ignore[arg-type]

    for route in app.routes:
        spec = document["paths"][route.path]  # type: ignore[attr-defined]
        for method in route.methods or ():  # type: ignore[attr-defined]
            if method != "HEAD":
                assert method.lower() in spec, (route.path, method)  # type: ignore[attr-defined]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    schemas = document["components"]["schemas"]
    assert set(schemas["ClaimedSpace"]["required"]) == {
        "name",
        "apiKey",
        "keyId",
        "scopes",
        "emitRequiresKey",
        "createdAt",
    }


async def test_a_space_holds_at_most_max_keys_per_space_keys():
    # QA: 300 keys were created, all 201; each is held in every instance's keyring.
    async with auth_gateway(limits=Limits(max_keys_per_space=3)) as gw:
        first = (await gw.claim("acme"))["apiKey"]  # the claim's key is the first
        await gw.key("acme", "emit")
        spare = await gw.key("acme", "read")
        refused = await gw.config.post(
            "/v1/spaces/acme/keys", json={"scopes": ["emit"]}, headers=bearer(first)
        )
        await gw.claim("beta")  # another space has its own count
        spare_id = spare.split("_")[1]
        revoked = await gw.config.delete(f"/v1/spaces/acme/keys/{spare_id}", headers=bearer(first))
        again = await gw.config.post(
            "/v1/spaces/acme/keys", json={"scopes": ["emit"]}, headers=bearer(first)
        )

    assert refused.status_code == 400
    assert errors(refused) == (
        'Space "acme" has reached its limit of 3 keys (expired ones count until revoked). '
        "Revoke some, or ask the operator to raise it (eg serve --max-keys-per-space)."
    )
    assert revoked.status_code == 204
    assert again.status_code == 201
