"""``MemoryStore``: the in-memory :class:`~eventgateway.store.base.ConfigStore`.

Product code, not a test helper: it backs the in-process test kit and anyone's unit tests.
It keeps every change since creation (config writes are rare), so ``watch`` can start
from any revision. Nothing survives the process.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator

from eventgateway.errors import ConflictError, NotFoundError, StoreError
from eventgateway.model.entities import Kind
from eventgateway.store._changefeed import ChangeFeed, follow
from eventgateway.store.base import Change, ConfigStore, Entry, Snapshot

__all__ = ["MemoryStore"]

logger = logging.getLogger(__name__)

_Key = tuple[Kind, str, str]


class MemoryStore(ConfigStore):
    """A :class:`ConfigStore` held in a dict; every method is atomic within the event loop.

    Example::

        store = MemoryStore()
        await store.open()
        revision = await store.create("functions", "default", "hello", b"{...}")

    .. versionadded:: 0.1.0
    """

    def __init__(self) -> None:
        self._entries: dict[_Key, Entry] = {}
        # _log[i] holds revision i + 1: revisions are consecutive from 1.
        self._log: list[Change] = []
        self._feed = ChangeFeed()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed; open a new MemoryStore")

    async def close(self) -> None:
        """End every running watch; later calls raise :class:`StoreError`."""
        self._closed = True
        await self._feed.close()

    async def get(self, kind: Kind, space: str, key: str) -> bytes | None:
        """The value under (kind, space, key), or ``None``."""
        self._check_open()
        entry = self._entries.get((kind, space, key))
        return entry.value if entry is not None else None

    async def list(self, kind: Kind, space: str) -> builtins.list[bytes]:
        """All values of one kind in one space, keys in descending byte order."""
        self._check_open()
        entries = [e for (k, s, _), e in self._entries.items() if k == kind and s == space]
        entries.sort(key=lambda e: e.key.encode(), reverse=True)
        return [e.value for e in entries]

    async def list_all(self, kind: Kind) -> builtins.list[bytes]:
        """All values of one kind in every space, ordered by (space, key)."""
        self._check_open()
        entries = [e for (k, _, _), e in self._entries.items() if k == kind]
        entries.sort(key=lambda e: (e.space.encode(), e.key.encode()))
        return [e.value for e in entries]

    async def _commit(self, kind: Kind, space: str, key: str, value: bytes | None) -> int:
        revision = len(self._log) + 1
        self._log.append(Change(kind, space, key, value, revision))
        if value is None:
            del self._entries[(kind, space, key)]
        else:
            self._entries[(kind, space, key)] = Entry(kind, space, key, value, revision)
        await self._feed.publish(revision)
        return revision

    async def create(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Store a new value; :class:`ConflictError` if the key exists."""
        self._check_open()
        if (kind, space, key) in self._entries:
            raise ConflictError(f'{kind} "{space}/{key}" already exists.')
        return await self._commit(kind, space, key, value)

    async def update(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Replace a value; :class:`NotFoundError` if the key is absent."""
        self._check_open()
        if (kind, space, key) not in self._entries:
            raise NotFoundError(f'{kind} "{space}/{key}" not found.')
        return await self._commit(kind, space, key, value)

    async def delete(self, kind: Kind, space: str, key: str) -> int:
        """Remove a value; :class:`NotFoundError` if the key is absent."""
        self._check_open()
        if (kind, space, key) not in self._entries:
            raise NotFoundError(f'{kind} "{space}/{key}" not found.')
        return await self._commit(kind, space, key, None)

    async def head(self) -> int:
        """The revision of the last write committed (no I/O: the change feed's)."""
        return self._feed.head

    async def snapshot(self) -> Snapshot:
        """Every entry, consistent at the current revision."""
        self._check_open()
        entries = sorted(self._entries.values(), key=lambda e: (e.kind, e.space, e.key))
        return Snapshot(entries=entries, revision=len(self._log))

    async def _changes_after(self, revision: int) -> builtins.list[Change]:
        if self._closed:
            return []
        return self._log[max(revision, 0) :]

    async def watch(self, after_revision: int) -> AsyncIterator[Change]:
        """Changes above ``after_revision`` in order, then new ones as they come, until close."""
        async for change in follow(self._feed, self._changes_after, after_revision):
            yield change
