"""A subscription's ``filter`` through the real config stores (SQLite and NATS KV): it is
stored, read back, watched into a routing table, and records written without it still load.

The NATS backend gets a bucket of its own (a unique prefix), deleted afterwards; it skips
when no server listens at 127.0.0.1:4222 (fails in CI).
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest

from eventgateway.api.resources import ConfigResources
from eventgateway.dispatch.link import routing_message
from eventgateway.dispatch.link_wire import decode_message
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


def record(subscription_id: str, type_: str, path: str, pattern: bytes) -> bytes:
    """A subscription as the store holds it, with ``pattern`` as its filter's JSON."""
    return (
        b'{"space":"acme","subscriptionId":"' + subscription_id.encode() + b'","type":"'
        + type_.encode() + b'","eventType":"user.created","functionId":"crm","path":"'
        + path.encode() + b'","method":"POST","filter":' + pattern + b"}"
    )  # fmt: skip


# What the Configuration API stored before integers were limited to 64 bits.
BIG_FILTER = b'{"data":{"n":[{"numeric":[">",18446744073709551616]}]}}'


async def test_a_stored_filter_beyond_64_bits_is_kept_out_of_routing_and_off_the_wire(
    store: ConfigStore, caplog: pytest.LogCaptureFixture
):
    resources = ConfigResources(store)
    await setup(resources)
    body = {"type": "async", "eventType": "user.created", "functionId": "crm", "path": "/acme"}
    good = await resources.create_subscription("acme", {**body, "filter": PATTERN})
    plain = await resources.create_subscription("acme", {**body, "path": "/plain"})
    await store.create("subscriptions", "acme", "big", record("big", "async", "/acme", BIG_FILTER))
    await store.create(
        "subscriptions",
        "acme",
        "sync",
        record("sync", "sync", "/hook", b'{"n":[-1180591620717411303424]}'),
    )
    routing = RoutingSync(store)

    await routing.refresh()

    [target] = routing.table.async_targets("POST", "/acme", "user.created")
    assert target.subscription == good
    assert "Async subscription big in space acme skipped: its filter is invalid" in caplog.text
    # The delivery worker's routing frame: everything else, and it encodes.
    message = routing_message(routing)
    assert decode_message(msgspec.msgpack.encode(message)) == message
    by_id = {s.subscription_id: s for s in message.subscriptions}
    assert set(by_id) == {good.subscription_id, plain.subscription_id, "sync"}
    assert by_id["sync"].filter is None  # nothing applies a sync subscription's filter
    assert len(message.functions) == len(message.event_types) == 1
    # Still stored as it was, for an update or a delete to put right.
    stored = await resources.get_subscription("acme", "big")
    assert stored.filter == {"data": {"n": [{"numeric": [">", 2**64]}]}}
