"""Emit keys on the Events API: private spaces need one, public ones and open mode do not."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.api.support_auth import OPERATOR_KEY, StaticAuthenticator
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver

EVENT = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "user.created"}
STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


@contextlib.asynccontextmanager
async def gateway(**settings) -> AsyncIterator[tuple[InProcess, StaticAuthenticator]]:
    auth = StaticAuthenticator(private=("acme",), public=("open",))
    auth.add_key("emit-acme", "acme", "emit")
    auth.add_key("read-acme", "acme", "read", "admin")
    auth.add_key("emit-beta", "beta", "emit")
    async with in_process_gateway(**settings) as gw:
        gw.gateway.events_app.authenticator = auth
        yield gw, auth


async def emit(gw: InProcess, path: str, **headers: str):
    return await gw.events.post(path, json=EVENT, headers={**STRUCTURED, **headers})


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "emit-acme"},
        {"Authorization": "Bearer emit-acme"},
        {"Authorization": "bearer emit-acme"},
        {"Authorization": "BEARER   emit-acme "},
        {"X-Api-Key": OPERATOR_KEY},
        {"Authorization": f"Bearer {OPERATOR_KEY}"},
    ],
)
async def test_a_private_space_accepts_an_emit_key_in_either_header(headers):
    async with gateway() as (gw, _):
        response = await emit(gw, "/acme/users", **headers)

    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"}, {"X-Api-Key": ""}],
)
async def test_a_private_space_without_a_key_is_401_naming_both_headers(headers):
    async with gateway() as (gw, _):
        response = await emit(gw, "/acme/users", **headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    assert '"acme" is private' in error["message"]
    assert "X-Api-Key: <key>" in error["message"]
    assert "Authorization: Bearer <key>" in error["message"]


async def test_an_unknown_key_is_401_and_never_echoed():
    async with gateway() as (gw, _):
        response = await emit(gw, "/acme/users", **{"X-Api-Key": "guessed-secret"})

    assert response.status_code == 401
    assert "not valid" in response.text
    assert "guessed-secret" not in response.text


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("emit-beta", 'belongs to space "beta"'),
        ("read-acme", "lacks the emit scope (it has: admin, read)"),
    ],
)
async def test_a_valid_key_of_another_space_or_scope_is_403(key, reason):
    async with gateway() as (gw, _):
        response = await emit(gw, "/acme/users", **{"X-Api-Key": key})

    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert reason in error["message"]
    assert 'into space "acme"' in error["message"]


@pytest.mark.parametrize("path", ["/open/users", "/unclaimed/users", "/", "/acme-not/x"])
async def test_public_and_unclaimed_spaces_need_no_key_and_ignore_the_headers(path):
    async with gateway() as (gw, auth):
        plain = await emit(gw, path)
        # A webhook's own Authorization header belongs to the function, not to the gateway.
        with_header = await emit(gw, path, Authorization="Bearer someone-elses-token")

    assert (plain.status_code, with_header.status_code) == (202, 202)
    assert auth.seen == []  # no key was looked up


async def test_open_mode_ignores_keys_everywhere():
    async with in_process_gateway() as gw:
        assert gw.gateway.events_app.authenticator is None
        responses = [
            await emit(gw, "/acme/users"),
            await emit(gw, "/acme/users", **{"X-Api-Key": "nonsense"}),
        ]

    assert [r.status_code for r in responses] == [202, 202]


async def test_with_a_domain_the_space_is_the_hosts_first_label():
    async with gateway(domain="example.com") as (gw, _):
        refused = await emit(gw, "/users", host="acme.example.com")
        accepted = await emit(gw, "/users", host="acme.example.com", **{"X-Api-Key": "emit-acme"})
        public = await emit(gw, "/acme/users", host="open.example.com")

    assert (refused.status_code, accepted.status_code, public.status_code) == (401, 202, 202)


async def test_a_batch_is_checked_once_for_its_request_space():
    batch = [dict(EVENT, id=str(n)) for n in range(3)]
    async with gateway() as (gw, _):
        refused = await gw.events.post("/acme/x", json=batch, headers=BATCH)
        accepted = await gw.events.post(
            "/acme/x", json=batch, headers={**BATCH, "X-Api-Key": "emit-acme"}
        )

    assert (refused.status_code, accepted.status_code) == (401, 202)


async def test_the_key_header_is_removed_before_the_request_reaches_a_function(
    receiver: Receiver,
):
    async with gateway() as (gw, _):
        await gw.http_function("hook", receiver.url("/hook"))
        await gw.event_type("http.request")
        await gw.subscribe(type="async", eventType="http.request", functionId="hook", path="/acme")
        response = await gw.events.post(
            "/acme",
            content=b"{}",
            headers={"X-Api-Key": "emit-acme", "Authorization": "Bearer for-the-function"},
        )
        assert response.status_code == 202
        [call] = await receiver.wait_for(1, "/hook")

    headers = call.json()["data"]["headers"]
    assert "X-Api-Key" not in headers
    assert headers["Authorization"] == "Bearer for-the-function"
    assert b"emit-acme" not in call.body


async def test_cors_preflight_of_a_private_space_needs_no_key_and_errors_carry_cors():
    async with gateway() as (gw, _):
        await gw.create(
            "cors",
            {"method": "POST", "path": "/acme/users", "allowedOrigins": ["https://app.test"]},
        )
        preflight = await gw.events.options(
            "/acme/users",
            headers={"Origin": "https://app.test", "Access-Control-Request-Method": "POST"},
        )
        refused = await emit(gw, "/acme/users", Origin="https://app.test")

    assert preflight.status_code == 200
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "https://app.test"


async def test_system_events_still_flow_and_never_carry_the_key(receiver: Receiver):
    async with gateway() as (gw, _):
        await gw.http_function("watch", receiver.url("/watch"), space="acme")
        await gw.event_type("eventgateway.event.received", space="acme")
        await gw.subscribe(
            space="acme",
            type="async",
            eventType="eventgateway.event.received",
            functionId="watch",
            path="/",
        )
        assert (await emit(gw, "/open/users")).status_code == 202
        assert (await emit(gw, "/acme/users", **{"X-Api-Key": "emit-acme"})).status_code == 202
        calls = await receiver.wait_for(2, "/watch")

    received = [call.json() for call in calls]
    assert {event["eventType"] for event in received} == {"eventgateway.event.received"}
    assert sorted(event["data"]["path"] for event in received) == ["/acme/users", "/open/users"]
    assert all(b"emit-acme" not in call.body for call in calls)


# -- with the real KeyRing, keys made through the Configuration API ----------------------


async def claim(gw: InProcess, space: str, *, private: bool) -> dict[str, str]:
    response = await gw.config.post("/v1/spaces", json={"name": space, "emitRequiresKey": private})
    assert response.status_code == 201, response.text
    return response.json()


async def issue(gw: InProcess, space: str, admin_key: str, *scopes: str) -> str:
    response = await gw.config.post(
        f"/v1/spaces/{space}/keys",
        json={"scopes": list(scopes)},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["apiKey"]


async def test_auth_mode_keys_issued_through_the_configuration_api_gate_emits():
    async with in_process_gateway(auth=True, operator_key="op-key-for-tests") as gw:
        acme = await claim(gw, "acme", private=True)
        await claim(gw, "beta", private=False)
        emit_key = await issue(gw, "acme", acme["apiKey"], "emit")
        read_key = await issue(gw, "acme", acme["apiKey"], "read")
        statuses = {
            "no key": (await emit(gw, "/acme/x")).status_code,
            "emit key": (await emit(gw, "/acme/x", **{"X-Api-Key": emit_key})).status_code,
            "bearer": (await emit(gw, "/acme/x", Authorization=f"Bearer {emit_key}")).status_code,
            "read key": (await emit(gw, "/acme/x", **{"X-Api-Key": read_key})).status_code,
            "operator": (
                await emit(gw, "/acme/x", **{"X-Api-Key": "op-key-for-tests"})
            ).status_code,
            "public": (await emit(gw, "/beta/x")).status_code,
            "unclaimed": (await emit(gw, "/nobody/x")).status_code,
        }

    assert statuses == {
        "no key": 401,
        "emit key": 202,
        "bearer": 202,
        "read key": 403,
        "operator": 202,
        "public": 202,
        "unclaimed": 202,
    }


async def test_auth_mode_making_a_space_private_takes_effect_at_once():
    async with in_process_gateway(auth=True, operator_key="op-key-for-tests") as gw:
        acme = await claim(gw, "acme", private=False)
        before = (await emit(gw, "/acme/x")).status_code
        response = await gw.config.patch(
            "/v1/spaces/acme",
            json={"emitRequiresKey": True},
            headers={"Authorization": f"Bearer {acme['apiKey']}"},
        )
        assert response.status_code == 200, response.text
        after = (await emit(gw, "/acme/x")).status_code

    assert (before, after) == (202, 401)


async def test_auth_mode_a_revoked_emit_key_is_refused_from_the_next_request():
    async with in_process_gateway(auth=True, operator_key="op-key-for-tests") as gw:
        acme = await claim(gw, "acme", private=True)
        admin = {"Authorization": f"Bearer {acme['apiKey']}"}
        issued = await gw.config.post(
            "/v1/spaces/acme/keys", json={"scopes": ["emit"]}, headers=admin
        )
        key = issued.json()
        before = (await emit(gw, "/acme/x", **{"X-Api-Key": key["apiKey"]})).status_code
        deleted = await gw.config.delete(f"/v1/spaces/acme/keys/{key['keyId']}", headers=admin)
        assert deleted.status_code == 204, deleted.text
        after = (await emit(gw, "/acme/x", **{"X-Api-Key": key["apiKey"]})).status_code

    assert (before, after) == (202, 401)
