"""KeyRing: authenticates from memory, follows the store, honours expiry and revocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from eventgateway.auth.base import Principal
from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.spaces import SpaceAdmin
from eventgateway.model.spaces import encode_record
from eventgateway.routing.sync import RoutingSync
from eventgateway.store.memory import MemoryStore
from tests.auth.authkit import Clock


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    backend = MemoryStore()
    await backend.open()
    yield backend
    await backend.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ring(store: MemoryStore, clock: Clock) -> KeyRing:
    keyring = KeyRing(store, clock=clock)
    await keyring.refresh()
    return keyring


async def test_a_claimed_spaces_first_key_has_every_scope(store: MemoryStore, ring: KeyRing):
    space, issued = await SpaceAdmin(store, ring).claim("acme")

    principal = ring.authenticate(issued.token)

    assert principal == Principal(issued.key.key_id, "acme", frozenset({"admin", "emit", "read"}))
    assert ring.space("acme") is not None
    assert ring.space("acme").emit_requires_key is False  # type: ignore[union-attr]
    assert space.name == "acme"
    assert ring.claimed() == ["acme"]


@pytest.mark.parametrize("token", [None, "", "nonsense", "egk_0123456789abcdef_" + "0" * 48])
async def test_missing_malformed_and_unknown_keys_are_nobody(ring: KeyRing, token: str | None):
    assert ring.authenticate(token) is None


async def test_a_wrong_secret_for_a_known_id_is_refused(store: MemoryStore, ring: KeyRing):
    _, issued = await SpaceAdmin(store, ring).claim("acme")
    prefix, secret = issued.token.rsplit("_", 1)
    wrong = prefix + "_" + ("0" * 48 if secret != "0" * 48 else "1" * 48)

    assert ring.authenticate(wrong) is None


async def test_a_key_stops_working_at_its_expiry(store: MemoryStore, ring: KeyRing, clock: Clock):
    admin = SpaceAdmin(store, ring)
    await admin.claim("acme")
    issued = await admin.create_key("acme", ["emit"], expires_at=clock.now_s + 60)

    assert ring.authenticate(issued.token) is not None
    clock.advance(59.999)
    assert ring.authenticate(issued.token) is not None
    clock.advance(0.001)
    assert ring.authenticate(issued.token) is None


async def test_the_operator_key_may_do_everything_everywhere(ring: KeyRing):
    ring.set_operator_key("ego_" + "1" * 48)

    principal = ring.authenticate("ego_" + "1" * 48)

    assert principal is not None
    assert principal.is_operator
    assert principal.allows("anything", "admin")
    assert ring.authenticate("ego_" + "2" * 48) is None
    ring.set_operator_key(None)
    assert ring.authenticate("ego_" + "1" * 48) is None


def test_admin_implies_read_but_not_emit():
    admin = Principal("k", "acme", frozenset({"admin"}))

    assert admin.allows("acme", "read")
    assert not admin.allows("acme", "emit")
    assert not admin.allows("other", "read")


async def test_another_ring_on_the_same_store_follows_revocation_through_the_watch(
    store: MemoryStore, ring: KeyRing, clock: Clock
):
    admin = SpaceAdmin(store, ring)
    await admin.claim("acme")
    issued = await admin.create_key("acme", ["read"])
    follower = KeyRing(store, clock=clock)
    await follower.refresh()
    following = asyncio.create_task(follower.run())
    try:
        assert follower.authenticate(issued.token) is not None

        await admin.revoke_key("acme", issued.key.key_id)
        await asyncio.wait_for(follower.wait_for((await store.snapshot()).revision), 5)

        assert follower.authenticate(issued.token) is None
        assert ring.authenticate(issued.token) is None  # the writer's ring: before the answer
    finally:
        following.cancel()


async def test_a_deleted_spaces_keys_stop_at_once(store: MemoryStore, ring: KeyRing):
    admin = SpaceAdmin(store, ring)
    _, issued = await admin.claim("acme")

    await admin.delete("acme")

    assert ring.authenticate(issued.token) is None
    assert ring.space("acme") is None
    assert await store.list("keys", "acme") == []


async def test_an_unreadable_stored_key_is_ignored_not_fatal(store: MemoryStore, ring: KeyRing):
    _, issued = await SpaceAdmin(store, ring).claim("acme")
    await store.create("keys", "acme", "broken", b"{not json")

    await ring.refresh()

    assert ring.authenticate(issued.token) is not None


async def test_routing_ignores_spaces_and_keys(store: MemoryStore, ring: KeyRing):
    routing = RoutingSync(store)
    await SpaceAdmin(store, ring).claim("acme")

    await routing.refresh()

    assert routing.table.counts() == {}
    assert routing.revision == (await store.snapshot()).revision


async def test_the_routing_watch_passes_over_key_changes_without_a_rebuild(
    store: MemoryStore, ring: KeyRing
):
    published = asyncio.Event()
    tables = []

    def on_table(table: object) -> None:
        tables.append(table)
        published.set()

    routing = RoutingSync(store, on_table=on_table)
    await routing.refresh()
    tables.clear()
    published.clear()
    running = asyncio.create_task(routing.run())
    try:
        await SpaceAdmin(store, ring).claim("acme")
        await store.create("eventtypes", "acme", "x", b'{"space":"acme","name":"x"}')
        await asyncio.wait_for(published.wait(), 5)
    finally:
        running.cancel()

    assert len(tables) == 1  # the space and key writes alone built no table
    assert routing.table.counts()["acme"]["eventtypes"] == 1
    assert routing.revision == (await store.snapshot()).revision


def test_stored_records_never_hold_a_token():
    from eventgateway.model.spaces import ApiKey

    record = encode_record(
        ApiKey(key_id="k", space="acme", secret_hash="sha256:ab", scopes=["read"], created_at=1.0)
    )

    assert b"apiKey" not in record
    assert b"token" not in record
