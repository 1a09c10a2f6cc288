"""Per-space entity limits on the Configuration API (``eg serve --max-*-per-space``)."""

from __future__ import annotations

import pytest

from eventgateway.api.quotas import QUOTA_FLAGS, per_space_quotas
from eventgateway.settings import Limits
from tests.support.inprocess import InProcess, in_process_gateway

LIMITS = Limits(
    max_functions_per_space=2,
    max_subscriptions_per_space=2,
    max_event_types_per_space=2,
    max_cors_per_space=2,
)


def function(n: int) -> dict[str, object]:
    return {"functionId": f"f{n}", "type": "http", "provider": {"url": "http://127.0.0.1:9/"}}


def body(resource: str, n: int) -> dict[str, object]:
    return {
        "functions": function(n),
        "eventtypes": {"name": f"type.{n}"},
        "subscriptions": {
            "type": "async",
            "eventType": "type.0",
            "functionId": "f0",
            "path": f"/acme/{n}",
        },
        "cors": {"method": "POST", "path": f"/acme/{n}"},
    }[resource]


async def prepare_subscriptions(gw: InProcess) -> None:
    await gw.create("functions", function(0))
    await gw.create("eventtypes", {"name": "type.0"})


@pytest.mark.parametrize(
    ("resource", "noun"),
    [
        ("functions", "functions"),
        ("eventtypes", "event types"),
        ("subscriptions", "subscriptions"),
        ("cors", "CORS configurations"),
    ],
)
async def test_creating_past_the_limit_is_400_naming_the_limit_and_flag(resource, noun):
    async with in_process_gateway(limits=LIMITS) as gw:
        await prepare_subscriptions(gw)  # function f0 and type.0 fill one slot each
        made = 1 if resource in ("functions", "eventtypes") else 0
        for n in range(made, 2):
            await gw.create(resource, body(resource, n))
        refused = await gw.config.post(f"/v1/spaces/acme/{resource}", json=body(resource, 2))
        other_space = await gw.config.post(f"/v1/spaces/beta/{resource}", json=body(resource, 2))

    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["message"] == (
        f'Space "acme" has reached its limit of 2 {noun}. Delete some, '
        f"or ask the operator to raise it (eg serve {QUOTA_FLAGS[resource]})."
    )
    # beta's subscriptions fail on their missing references, not on acme's quota.
    assert other_space.status_code in (201, 400)
    assert "limit" not in other_space.text


async def test_a_duplicate_at_the_limit_still_reads_already_exists():
    async with in_process_gateway(limits=LIMITS) as gw:
        for n in range(2):
            await gw.create("functions", function(n))
        duplicate = await gw.config.post("/v1/spaces/acme/functions", json=function(1))

    assert duplicate.status_code == 409
    assert "already registered" in duplicate.text


async def test_deleting_makes_room_again():
    async with in_process_gateway(limits=LIMITS) as gw:
        for n in range(2):
            await gw.create("functions", function(n))
        assert (await gw.config.delete("/v1/spaces/acme/functions/f0")).status_code == 204
        again = await gw.config.post("/v1/spaces/acme/functions", json=function(2))

    assert again.status_code == 201


async def test_zero_means_unlimited():
    async with in_process_gateway(limits=Limits(max_functions_per_space=0)) as gw:
        for n in range(5):
            await gw.create("functions", function(n))


def test_defaults_are_1000_of_each_and_5000_subscriptions():
    assert per_space_quotas(Limits()) == {
        "functions": 1_000,
        "subscriptions": 5_000,
        "eventtypes": 1_000,
        "cors": 1_000,
    }
