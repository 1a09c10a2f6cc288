"""One ConfigStore contract, run against every backend (memory, SQLite, NATS JetStream KV).

Add a backend by adding a factory to ``BACKENDS``; every test below must pass
unchanged. The NATS backend gets a bucket of its own per test (a unique prefix), deleted
afterwards; it skips when no server listens at 127.0.0.1:4222 (fails in CI).
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable

import pytest

from eventgateway.errors import ConflictError, NotFoundError, StoreError
from eventgateway.store.base import Change, ConfigStore
from eventgateway.store.memory import MemoryStore
from eventgateway.store.sqlite import SqliteStore
from tests.support.nats_kv import NATS_URL, delete_buckets, require_nats, unique_prefix

DEADLINE_S = 5.0


def nats_store(tmp_path: pathlib.Path) -> ConfigStore:
    from eventgateway.store.nats import NatsStore

    require_nats()
    return NatsStore([NATS_URL], prefix=unique_prefix())


BACKENDS: dict[str, Callable[[pathlib.Path], ConfigStore]] = {
    "memory": lambda tmp_path: MemoryStore(),
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


async def next_change(changes: AsyncIterator[Change]) -> Change:
    return await asyncio.wait_for(anext(changes), DEADLINE_S)


async def test_create_then_get(store: ConfigStore) -> None:
    revision = await store.create("functions", "acme", "f1", b'{"a":1}')

    assert revision >= 1
    assert await store.get("functions", "acme", "f1") == b'{"a":1}'


async def test_get_missing_is_none(store: ConfigStore) -> None:
    assert await store.get("functions", "acme", "nope") is None


async def test_keys_are_scoped_by_kind_and_space(store: ConfigStore) -> None:
    await store.create("functions", "acme", "x", b"f")
    await store.create("eventtypes", "acme", "x", b"e")
    await store.create("functions", "other", "x", b"o")

    assert await store.get("functions", "acme", "x") == b"f"
    assert await store.get("eventtypes", "acme", "x") == b"e"
    assert await store.get("functions", "other", "x") == b"o"


async def test_create_existing_key_conflicts(store: ConfigStore) -> None:
    await store.create("functions", "acme", "f1", b"1")

    with pytest.raises(ConflictError):
        await store.create("functions", "acme", "f1", b"2")
    assert await store.get("functions", "acme", "f1") == b"1"


async def test_update_replaces_value(store: ConfigStore) -> None:
    first = await store.create("functions", "acme", "f1", b"1")

    second = await store.update("functions", "acme", "f1", b"2")

    assert second > first
    assert await store.get("functions", "acme", "f1") == b"2"


async def test_update_missing_is_not_found(store: ConfigStore) -> None:
    with pytest.raises(NotFoundError):
        await store.update("functions", "acme", "nope", b"x")


async def test_delete_removes_value(store: ConfigStore) -> None:
    await store.create("functions", "acme", "f1", b"1")

    await store.delete("functions", "acme", "f1")

    assert await store.get("functions", "acme", "f1") is None
    assert await store.list("functions", "acme") == []


async def test_delete_missing_is_not_found(store: ConfigStore) -> None:
    with pytest.raises(NotFoundError):
        await store.delete("functions", "acme", "nope")


async def test_list_is_one_kind_and_space_in_descending_key_order(store: ConfigStore) -> None:
    for key in ["b", "a", "c", "B"]:
        await store.create("subscriptions", "acme", key, key.encode())
    await store.create("subscriptions", "other", "z", b"z")
    await store.create("functions", "acme", "y", b"y")

    assert await store.list("subscriptions", "acme") == [b"c", b"b", b"a", b"B"]


async def test_list_of_unknown_space_is_empty(store: ConfigStore) -> None:
    assert await store.list("cors", "nobody") == []


async def test_list_all_spans_spaces(store: ConfigStore) -> None:
    await store.create("subscriptions", "b-space", "s1", b"b1")
    await store.create("subscriptions", "a-space", "s2", b"a2")
    await store.create("functions", "a-space", "f", b"f")

    assert await store.list_all("subscriptions") == [b"a2", b"b1"]


async def test_revisions_increase_store_wide(store: ConfigStore) -> None:
    revisions = [
        await store.create("functions", "acme", "f1", b"1"),
        await store.create("eventtypes", "other", "e1", b"1"),
        await store.update("functions", "acme", "f1", b"2"),
        await store.delete("eventtypes", "other", "e1"),
    ]

    assert revisions == sorted(revisions)
    assert len(set(revisions)) == 4


async def test_snapshot_holds_every_entry_at_its_revision(store: ConfigStore) -> None:
    await store.create("functions", "acme", "f1", b"1")
    await store.create("eventtypes", "acme", "e1", b"e")
    await store.create("cors", "other", "c1", b"c")
    last = await store.update("functions", "acme", "f1", b"2")
    await store.delete("cors", "other", "c1")
    snapshot = await store.snapshot()

    by_key = {(e.kind, e.space, e.key): e for e in snapshot.entries}
    assert set(by_key) == {("functions", "acme", "f1"), ("eventtypes", "acme", "e1")}
    assert by_key[("functions", "acme", "f1")].value == b"2"
    assert by_key[("functions", "acme", "f1")].revision == last
    assert snapshot.revision == last + 1


async def test_head_is_the_revision_of_the_last_write(store: ConfigStore) -> None:
    assert await store.head() == 0
    await store.create("functions", "acme", "f1", b"1")
    last = await store.delete("functions", "acme", "f1")

    assert await store.head() == last == (await store.snapshot()).revision


async def test_snapshot_of_empty_store(store: ConfigStore) -> None:
    snapshot = await store.snapshot()

    assert snapshot.entries == []
    assert snapshot.revision == 0


async def test_watch_yields_changes_in_order(store: ConfigStore) -> None:
    start = (await store.snapshot()).revision
    changes = store.watch(start)
    r1 = await store.create("functions", "acme", "f1", b"1")
    r2 = await store.update("functions", "acme", "f1", b"2")
    r3 = await store.delete("functions", "acme", "f1")

    seen = [await next_change(changes) for _ in range(3)]

    assert seen == [
        Change("functions", "acme", "f1", b"1", r1),
        Change("functions", "acme", "f1", b"2", r2),
        Change("functions", "acme", "f1", None, r3),
    ]
    await changes.aclose()  # type: ignore[attr-defined]


async def test_watch_after_revision_replays_only_later_changes(store: ConfigStore) -> None:
    await store.create("eventtypes", "acme", "a", b"a")
    middle = await store.create("eventtypes", "acme", "b", b"b")
    last = await store.create("eventtypes", "acme", "c", b"c")
    changes = store.watch(middle)

    change = await next_change(changes)

    assert (change.key, change.revision) == ("c", last)
    await changes.aclose()  # type: ignore[attr-defined]


async def test_watch_waits_for_writes_made_later(store: ConfigStore) -> None:
    head = (await store.snapshot()).revision
    changes = store.watch(head)
    pending = asyncio.ensure_future(next_change(changes))

    revision = await store.create("cors", "acme", "GET%2Fx", b"x")

    change = await pending
    assert (change.kind, change.key, change.revision) == ("cors", "GET%2Fx", revision)
    await changes.aclose()  # type: ignore[attr-defined]


async def test_two_watchers_each_see_every_change(store: ConfigStore) -> None:
    first, second = store.watch(0), store.watch(0)
    revision = await store.create("functions", "acme", "f1", b"1")

    assert (await next_change(first)).revision == revision
    assert (await next_change(second)).revision == revision
    await first.aclose()  # type: ignore[attr-defined]
    await second.aclose()  # type: ignore[attr-defined]


async def test_close_ends_a_waiting_watch(store: ConfigStore) -> None:
    await store.create("functions", "acme", "f1", b"1")
    changes = store.watch(0)
    await next_change(changes)
    waiting = asyncio.ensure_future(anext(changes))

    await store.close()

    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, DEADLINE_S)


async def test_watch_started_after_close_ends_at_once(store: ConfigStore) -> None:
    await store.create("functions", "acme", "f1", b"1")
    await store.close()

    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(store.watch(0)), DEADLINE_S)


async def test_close_is_idempotent_and_refuses_later_use(store: ConfigStore) -> None:
    await store.close()
    await store.close()

    with pytest.raises(StoreError):
        await store.get("functions", "acme", "f1")
    with pytest.raises(StoreError):
        await store.create("functions", "acme", "f1", b"1")
