"""After a write through this process, the routing table catches up through the watch
(one read of the store's head), not by reading the whole store again (QA: on NATS each
write read every key ever written: 10 → 253 ms per write after 1,500 types made and
deleted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from eventgateway.model.entities import EventType, encode_entity
from eventgateway.routing.sync import RoutingSync
from eventgateway.store.base import Change, Snapshot
from eventgateway.store.memory import MemoryStore

DEADLINE_S = 5.0


class CountingStore(MemoryStore):
    """Counts snapshots; ``stall`` makes the watch deliver nothing (a watch behind)."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots = 0
        self.stall = False

    async def snapshot(self) -> Snapshot:
        self.snapshots += 1
        return await super().snapshot()

    async def watch(self, after_revision: int) -> AsyncIterator[Change]:
        async for change in super().watch(after_revision):
            if not self.stall:
                yield change


async def create_type(store: MemoryStore, name: str) -> None:
    value = encode_entity(EventType(space="acme", name=name))
    await store.create("eventtypes", "acme", name, value)


@pytest.fixture
async def store() -> AsyncIterator[CountingStore]:
    store = CountingStore()
    await store.open()
    yield store
    await store.close()


async def following(sync: RoutingSync) -> asyncio.Task[None]:
    await sync.refresh()
    task = asyncio.create_task(sync.run())
    for _ in range(100):  # run() starts its watch on its first steps
        if sync._following:
            return task
        await asyncio.sleep(0)
    raise AssertionError("run() did not start following")


async def test_a_write_is_routed_through_the_watch_without_a_snapshot(
    store: CountingStore,
) -> None:
    sync = RoutingSync(store)
    task = await following(sync)
    try:
        before = store.snapshots
        await create_type(store, "user.created")

        await asyncio.wait_for(sync.catch_up(), DEADLINE_S)

        assert sync.table.is_configured_type("user.created")
        assert store.snapshots == before
    finally:
        await store.close()
        await asyncio.wait_for(task, DEADLINE_S)


async def test_without_a_watch_it_refreshes(store: CountingStore) -> None:
    sync = RoutingSync(store)
    await create_type(store, "user.created")

    await sync.catch_up()

    assert sync.table.is_configured_type("user.created")
    assert store.snapshots == 1


async def test_a_watch_that_does_not_get_there_in_time_is_replaced_by_a_refresh(
    store: CountingStore,
) -> None:
    sync = RoutingSync(store)
    task = await following(sync)
    try:
        store.stall = True
        await create_type(store, "user.created")

        await asyncio.wait_for(sync.catch_up(timeout_s=0.2), DEADLINE_S)

        assert sync.table.is_configured_type("user.created")
        assert store.snapshots == 2  # the start's, and the fallback's
    finally:
        await store.close()
        await asyncio.wait_for(task, DEADLINE_S)
