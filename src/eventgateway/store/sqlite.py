"""``SqliteStore``: the embedded, durable :class:`~eventgateway.store.base.ConfigStore`.

One SQLite file in WAL mode with two tables: ``entries`` (the current value of every
(kind, space, key), with the revision that wrote it) and ``changes`` (the log of every
write, whose autoincrement key *is* the store-wide revision). ``watch`` reads the log and
is woken in-process after each commit, so it never polls.

All SQLite calls run on one dedicated thread: they never block the event loop, and the
thread serialises them, so a read-check-write sequence inside one call is atomic for
this process. Config writes are rare, so one thread is plenty. Writes from *other*
processes on the same file are stored correctly but do not wake this process's watchers.

The schema is versioned with ``PRAGMA user_version``; :data:`_MIGRATIONS` lists the steps
from each version to the next.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar, cast

from eventgateway.errors import ConflictError, NotFoundError, StoreError, store_error
from eventgateway.model.entities import Kind
from eventgateway.store._changefeed import ChangeFeed, follow
from eventgateway.store.base import Change, ConfigStore, Entry, Snapshot

__all__ = ["SqliteStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# _MIGRATIONS[n] takes a database from user_version n to n + 1.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE entries (
            kind TEXT NOT NULL,
            space TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB NOT NULL,
            revision INTEGER NOT NULL,
            PRIMARY KEY (kind, space, key)
        ) WITHOUT ROWID""",
        # AUTOINCREMENT: a revision is never reused, even if the log is trimmed one day.
        """CREATE TABLE changes (
            revision INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            space TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB
        )""",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)
_WATCH_BATCH: Final = 500


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn sqlite3 errors into :class:`StoreError` where they enter."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(f"SQLite store failed to {action}: {exc}", exc) from exc


class SqliteStore(ConfigStore):
    """A :class:`ConfigStore` in one SQLite file (WAL).

    Args:
        path: the database file; it and its parent directories are created on
            :meth:`open`.

    Example::

        store = SqliteStore(Path("~/.eventgateway/config.db").expanduser())
        await store.open()
        try:
            ...
        finally:
            await store.close()

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._feed = ChangeFeed()
        self._closed = False

    # -- plumbing -----------------------------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise StoreError(f"the SQLite store {self.path} is closed")
        if self._executor is None:
            raise StoreError(f"the SQLite store {self.path} is not open; call open() first")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None  # _run guarantees open() ran
        return self._conn

    def _open_sync(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {self.path}: {exc}") from exc
        with _translated(f"open {self.path}"):
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA busy_timeout=5000")
                self._migrate(conn)
                head = self._head(conn)
            except BaseException:
                conn.close()
                raise
        self._conn = conn
        return head

    def _migrate(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this eventgateway "
                f"understands ({SCHEMA_VERSION}); upgrade eventgateway or use another file"
            )
        for step in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            logger.info("Migrated %s to schema version %d", self.path, step + 1)

    @staticmethod
    def _head(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return int(row[0]) if row else 0

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Create or migrate the database and start the store's thread."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            self._feed.head = await self._run(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        """End every watch, close the database and stop the thread. Idempotent."""
        if self._closed:
            return
        await self._feed.close()
        executor, conn = self._executor, self._conn
        self._closed = True
        if executor is None:
            return
        if conn is not None:
            # Queued behind any call already submitted, so those finish first.
            loop = asyncio.get_running_loop()
            with _translated("close"):
                await loop.run_in_executor(executor, conn.close)
        executor.shutdown(wait=False)

    # -- reads --------------------------------------------------------------------------

    def _get_sync(self, kind: Kind, space: str, key: str) -> bytes | None:
        with _translated("read"):
            row = self._db.execute(
                "SELECT value FROM entries WHERE kind = ? AND space = ? AND key = ?",
                (kind, space, key),
            ).fetchone()
        return bytes(row[0]) if row else None

    async def get(self, kind: Kind, space: str, key: str) -> bytes | None:
        """The value under (kind, space, key), or ``None``."""
        return await self._run(self._get_sync, kind, space, key)

    def _list_sync(self, kind: Kind, space: str | None) -> list[bytes]:
        with _translated("list"):
            if space is None:
                rows = self._db.execute(
                    "SELECT value FROM entries WHERE kind = ? ORDER BY space, key", (kind,)
                ).fetchall()
            else:
                # TEXT compares with memcmp on UTF-8: the byte order the contract asks for.
                rows = self._db.execute(
                    "SELECT value FROM entries WHERE kind = ? AND space = ? ORDER BY key DESC",
                    (kind, space),
                ).fetchall()
        return [bytes(row[0]) for row in rows]

    async def list(self, kind: Kind, space: str) -> builtins.list[bytes]:
        """All values of one kind in one space, keys in descending byte order."""
        return await self._run(self._list_sync, kind, space)

    async def list_all(self, kind: Kind) -> builtins.list[bytes]:
        """All values of one kind in every space, ordered by (space, key)."""
        return await self._run(self._list_sync, kind, None)

    def _snapshot_sync(self) -> Snapshot:
        with _translated("read a snapshot"):
            conn = self._db
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    "SELECT kind, space, key, value, revision FROM entries "
                    "ORDER BY kind, space, key"
                ).fetchall()
                head = self._head(conn)
            finally:
                conn.execute("COMMIT")
        entries = [
            Entry(cast(Kind, kind), space, key, bytes(value), revision)
            for kind, space, key, value, revision in rows
        ]
        return Snapshot(entries=entries, revision=head)

    async def head(self) -> int:
        """The revision of the last write committed (no I/O: the change feed's)."""
        return self._feed.head

    async def snapshot(self) -> Snapshot:
        """Every entry, consistent at one revision."""
        return await self._run(self._snapshot_sync)

    # -- writes -------------------------------------------------------------------------

    def _write_sync(
        self, operation: str, kind: Kind, space: str, key: str, value: bytes | None
    ) -> int:
        conn = self._db
        with _translated(f"{operation} {kind} {space}/{key}"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                exists = (
                    conn.execute(
                        "SELECT 1 FROM entries WHERE kind = ? AND space = ? AND key = ?",
                        (kind, space, key),
                    ).fetchone()
                    is not None
                )
                if operation == "create" and exists:
                    raise ConflictError(f'{kind} "{space}/{key}" already exists.')
                if operation != "create" and not exists:
                    raise NotFoundError(f'{kind} "{space}/{key}" not found.')
                cursor = conn.execute(
                    "INSERT INTO changes (kind, space, key, value) VALUES (?, ?, ?, ?)",
                    (kind, space, key, value),
                )
                revision = cursor.lastrowid
                assert revision is not None
                if value is None:
                    conn.execute(
                        "DELETE FROM entries WHERE kind = ? AND space = ? AND key = ?",
                        (kind, space, key),
                    )
                else:
                    conn.execute(
                        "INSERT INTO entries (kind, space, key, value, revision) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, space, key) "
                        "DO UPDATE SET value = excluded.value, revision = excluded.revision",
                        (kind, space, key, value, revision),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return revision

    async def _write(
        self, operation: str, kind: Kind, space: str, key: str, value: bytes | None
    ) -> int:
        revision = await self._run(self._write_sync, operation, kind, space, key, value)
        await self._feed.publish(revision)
        return revision

    async def create(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Store a new value; :class:`ConflictError` if the key exists."""
        return await self._write("create", kind, space, key, value)

    async def update(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Replace a value; :class:`NotFoundError` if the key is absent."""
        return await self._write("update", kind, space, key, value)

    async def delete(self, kind: Kind, space: str, key: str) -> int:
        """Remove a value; :class:`NotFoundError` if the key is absent."""
        return await self._write("delete", kind, space, key, None)

    # -- watch --------------------------------------------------------------------------

    def _changes_sync(self, after_revision: int) -> builtins.list[Change]:
        with _translated("read the change log"):
            rows = self._db.execute(
                "SELECT revision, kind, space, key, value FROM changes "
                "WHERE revision > ? ORDER BY revision LIMIT ?",
                (after_revision, _WATCH_BATCH),
            ).fetchall()
        return [
            Change(cast(Kind, kind), space, key, None if value is None else bytes(value), rev)
            for rev, kind, space, key, value in rows
        ]

    async def _changes_after(self, after_revision: int) -> builtins.list[Change]:
        if self._closed:
            return []
        return await self._run(self._changes_sync, after_revision)

    async def watch(self, after_revision: int) -> AsyncIterator[Change]:
        """Changes above ``after_revision`` in order, then new ones as they come, until close."""
        async for change in follow(self._feed, self._changes_after, after_revision):
            yield change
