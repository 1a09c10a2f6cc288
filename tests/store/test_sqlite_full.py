"""A SQLite store whose file cannot grow answers with StorageFullError, the Configuration
API's 507 (QA: a full disk made configuration writes 500s with a traceback each).

SQLite's ``max_page_count`` makes the real SQLITE_FULL ("database or disk is full")
without filling a disk.
"""

from __future__ import annotations

import pathlib
import sqlite3

from eventgateway.errors import StorageFullError
from eventgateway.store.sqlite import SqliteStore


async def test_a_write_the_file_has_no_room_for_is_a_storage_full_error(
    tmp_path: pathlib.Path,
) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    await store.open()

    def cap(conn: sqlite3.Connection) -> None:  # on the store's own thread
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    caught: StorageFullError | None = None
    try:
        await store._run(cap, store._db)
        for n in range(100):
            try:
                await store.create("functions", "acme", f"f{n}", b"x" * 4096)
            except StorageFullError as exc:
                caught = exc
                break
        assert await store.get("functions", "acme", "f0") is not None  # reads go on
    finally:
        await store.close()

    assert caught is not None, "100 writes of 4 KiB fitted in 2 pages"
    assert "database or disk is full" in str(caught)
