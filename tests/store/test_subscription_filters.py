"""A subscription's ``filter`` through the real config stores (SQLite and NATS KV): it is
stored, read back, watched into a routing table, and records written without it still load.

The NATS backend gets a bucket of its own (a unique prefix), deleted afterwards; it skips
when no server listens at 127.0.0.1:4222 (fails in CI).
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable

import pytest

from eventgateway.api.resources import ConfigResources
from eventgateway.model.entities import Subscription, decode_entity, encode_entity
from eventgateway.routing.filters import EventFilter
from eventgateway.routing.sync import RoutingSync
from eventgateway.store.base import ConfigStore
from eventgateway.store.sqlite import SqliteStore
from tests.support.nats_kv import NATS_URL, delete_buckets, require_nats, unique_prefix

PATTERN = {"data": {"plan": ["pro"], "seats": [{"numeric": [">", 0]}]}, "source": ["/u"]}
# What a subscription looked like in the store before filters existed.
OLD_RECORD = (
    b'{"space":"acme","subscriptionId":"old","type":"async","eventType":"user.created",'
    b'"functionId":"crm","path":"/acme","method":"POST","retryPolicy":{"maxAttempts":3}}'
)


def nats_store(tmp_path: pathlib.Path) -> ConfigStore:
    from eventgateway.store.nats import NatsStore

    require_nats()
    return NatsStore([NATS_URL], prefix=unique_prefix())


BACKENDS: dict[str, Callable[[pathlib.Path], ConfigStore]] = {
    "sqlite": lambda tmp_path: SqliteStore(tmp_path / "config.db"),
    "nats": nats_store,
}


@pytest.fixture(params=list(BACKENDS))
async def store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> AsyncIterator[ConfigStore]:
    backend = BACKENDS[request.param](tmp_path)
    await backend.open()
    yield backend
    await backend.close()
    prefix = getattr(backend, "prefix", None)
    if prefix is not None:
        await delete_buckets(prefix, "config")


async def setup(resources: ConfigResources) -> None:
    await resources.create_event_type("acme", {"name": "user.created"})
    await resources.create_function(
        "acme", {"functionId": "crm", "type": "http", "provider": {"url": "http://crm/"}}
    )


async def test_a_filter_round_trips_and_reaches_the_routing_table(store: ConfigStore):
    resources = ConfigResources(store)
    await setup(resources)
    body = {"type": "async", "eventType": "user.created", "functionId": "crm", "path": "/acme"}

    created = await resources.create_subscription("acme", {**body, "filter": PATTERN})
    fetched = await resources.get_subscription("acme", created.subscription_id)
    [listed] = await resources.list_subscriptions("acme")
    routing = RoutingSync(store)
    await routing.refresh()

    assert fetched.filter == PATTERN
    assert listed == fetched == created
    [target] = routing.table.async_targets("POST", "/acme", "user.created")
    assert isinstance(target.matcher, EventFilter)


async def test_a_record_without_filter_still_loads_and_encodes_as_before(store: ConfigStore):
    await store.create("subscriptions", "acme", "old", OLD_RECORD)
    resources = ConfigResources(store)

    old = await resources.get_subscription("acme", "old")
    routing = RoutingSync(store)
    await routing.refresh()

    assert old.filter is None
    assert encode_entity(old) == OLD_RECORD
    [target] = routing.table.async_targets("POST", "/acme", "user.created")
    assert target.matcher is None


async def test_clearing_a_filter_is_stored(store: ConfigStore):
    resources = ConfigResources(store)
    await setup(resources)
    body = {"type": "async", "eventType": "user.created", "functionId": "crm", "path": "/acme"}
    created = await resources.create_subscription("acme", {**body, "filter": PATTERN})

    await resources.update_subscription("acme", created.subscription_id, body)

    raw = await store.get("subscriptions", "acme", created.subscription_id)
    assert raw is not None
    assert b"filter" not in raw
    stored = decode_entity("subscriptions", raw)
    assert isinstance(stored, Subscription)
    assert stored.filter is None
