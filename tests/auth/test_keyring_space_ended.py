"""KeyRing.on_space_ended: every process sharing the store learns that a space ended —
deleted, or deleted and claimed anew — whether it saw that through the watch or a refresh,
so it can end the tails and invocations it still runs for the old owner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.spaces import SpaceAdmin
from eventgateway.store.memory import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    backend = MemoryStore()
    await backend.open()
    yield backend
    await backend.close()


async def follower(store: MemoryStore) -> tuple[KeyRing, list[str]]:
    """Another process's ring on ``store``, recording the spaces it saw end."""
    ring = KeyRing(store)
    ended: list[str] = []
    ring.on_space_ended = ended.append
    await ring.refresh()
    return ring, ended


async def caught_up(ring: KeyRing, store: MemoryStore) -> None:
    await asyncio.wait_for(ring.wait_for((await store.snapshot()).revision), 5)


async def test_a_space_deleted_elsewhere_is_reported_once_through_the_watch(store: MemoryStore):
    writer = KeyRing(store)
    await writer.refresh()
    admin = SpaceAdmin(store, writer)
    await admin.claim("acme")
    await admin.claim("other")
    ring, ended = await follower(store)
    following = asyncio.create_task(ring.run())
    try:
        await admin.delete("acme")
        await caught_up(ring, store)
        assert ended == ["acme"]

        await admin.create_key("other", ["read"])  # other changes report nothing
        await caught_up(ring, store)
        assert ended == ["acme"]
    finally:
        following.cancel()


async def test_a_space_deleted_and_claimed_anew_is_reported_by_a_refresh(store: MemoryStore):
    writer = KeyRing(store)
    await writer.refresh()
    admin = SpaceAdmin(store, writer)
    await admin.claim("acme")
    ring, ended = await follower(store)  # not following the watch: only refreshes

    await admin.delete("acme")
    await admin.claim("acme", privileged=True)  # the operator gives the name to a new owner
    await ring.refresh()

    assert ended == ["acme"]
    assert ring.space("acme") is not None


async def test_a_reclaim_seen_only_as_a_new_record_is_an_end_too(store: MemoryStore):
    writer = KeyRing(store)
    await writer.refresh()
    admin = SpaceAdmin(store, writer)
    await admin.claim("acme")
    ring, ended = await follower(store)
    following = asyncio.create_task(ring.run())
    try:
        await admin.delete("acme")
        await admin.claim("acme", privileged=True)
        await caught_up(ring, store)
        assert ended == ["acme"]  # the delete; the new claim itself ends nothing
    finally:
        following.cancel()


async def test_a_failing_listener_does_not_stop_the_ring(store: MemoryStore):
    writer = KeyRing(store)
    await writer.refresh()
    admin = SpaceAdmin(store, writer)
    await admin.claim("acme")
    ring = KeyRing(store)
    await ring.refresh()

    def broken(name: str) -> None:
        raise RuntimeError("listener bug")

    ring.on_space_ended = broken
    following = asyncio.create_task(ring.run())
    try:
        await admin.delete("acme")
        _, issued = await admin.claim("fresh")
        await caught_up(ring, store)
        assert ring.space("acme") is None
        assert ring.authenticate(issued.token) is not None
    finally:
        following.cancel()
