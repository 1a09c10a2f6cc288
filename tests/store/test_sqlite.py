"""What only the SQLite store does: durability, schema versioning, error translation."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3

import pytest

from eventgateway.errors import ConflictError, StoreError
from eventgateway.store.sqlite import SCHEMA_VERSION, SqliteStore


async def opened(path: pathlib.Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    return store


async def test_values_and_revisions_survive_a_reopen(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.db"
    store = await opened(path)
    await store.create("functions", "acme", "f1", b"1")
    last = await store.update("functions", "acme", "f1", b"2")
    await store.close()

    store = await opened(path)
    try:
        assert await store.get("functions", "acme", "f1") == b"2"
        assert (await store.snapshot()).revision == last
        assert await store.create("functions", "acme", "f2", b"x") == last + 1
    finally:
        await store.close()


async def test_watch_replays_the_log_after_a_reopen(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.db"
    store = await opened(path)
    first = await store.create("eventtypes", "acme", "a", b"a")
    await store.delete("eventtypes", "acme", "a")
    await store.close()

    store = await opened(path)
    try:
        changes = store.watch(first)
        change = await asyncio.wait_for(anext(changes), 5)
        assert (change.key, change.value, change.revision) == ("a", None, first + 1)
        await changes.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_database_is_in_wal_mode_with_the_current_schema_version(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "config.db"
    await (await opened(path)).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_parent_directories_are_created(tmp_path: pathlib.Path) -> None:
    store = await opened(tmp_path / "a" / "b" / "config.db")
    await store.close()

    assert (tmp_path / "a" / "b" / "config.db").exists()


async def test_a_newer_schema_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    store = SqliteStore(path)
    with pytest.raises(StoreError, match="newer than this eventgateway understands"):
        await store.open()


async def test_an_unusable_file_is_a_store_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config.db").mkdir()

    with pytest.raises(StoreError) as caught:
        await SqliteStore(tmp_path / "config.db").open()

    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_a_corrupt_file_is_a_store_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "config.db").write_bytes(b"not a database" * 100)

    with pytest.raises(StoreError, match="SQLite store failed to open"):
        await SqliteStore(tmp_path / "config.db").open()


async def test_use_before_open_is_a_store_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(StoreError, match="not open"):
        await SqliteStore(tmp_path / "config.db").get("functions", "acme", "f1")


async def test_open_twice_is_harmless(tmp_path: pathlib.Path) -> None:
    store = await opened(tmp_path / "config.db")
    await store.open()
    try:
        await store.create("functions", "acme", "f1", b"1")
        assert await store.get("functions", "acme", "f1") == b"1"
    finally:
        await store.close()


async def test_a_failed_write_leaves_nothing_behind(tmp_path: pathlib.Path) -> None:
    store = await opened(tmp_path / "config.db")
    try:
        await store.create("functions", "acme", "f1", b"1")
        with pytest.raises(ConflictError, match="already exists"):
            await store.create("functions", "acme", "f1", b"2")
        snapshot = await store.snapshot()
        assert [e.value for e in snapshot.entries] == [b"1"]
        assert snapshot.revision == 1
    finally:
        await store.close()
