"""The ``ConfigStore`` interface.

A store holds opaque values (the JSON of an entity) under ``(kind, space, key)`` and
gives every write a store-wide, increasing ``revision``. Readers build their view from
:meth:`ConfigStore.snapshot` and keep it current with :meth:`ConfigStore.watch`, which
yields every change after a given revision, in order. That is all routing needs, and it
maps one to one onto a NATS JetStream KV bucket for cluster mode.

Contract (tested by ``tests/contract`` for every backend):

* ``create`` raises :class:`~eventgateway.errors.ConflictError` when the key exists;
  ``update`` and ``delete`` raise :class:`~eventgateway.errors.NotFoundError` when it
  does not. Backend failures raise :class:`~eventgateway.errors.StoreError`.
* ``list`` returns the values of one (kind, space), sorted by key in descending byte
  order (the original's order).
* ``watch(after_revision)`` yields each change with a revision greater than
  ``after_revision``, in revision order, then waits for more; it ends when the store
  closes.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass

from eventgateway.model.entities import Kind

__all__ = ["Change", "ConfigStore", "Entry", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored value."""

    kind: Kind
    space: str
    key: str
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class Change:
    """One write: ``value`` is ``None`` for a delete."""

    kind: Kind
    space: str
    key: str
    value: bytes | None
    revision: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every entry at ``revision``."""

    entries: list[Entry]
    revision: int


class ConfigStore(abc.ABC):
    """Keyed configuration storage with change notification. See the module docstring."""

    async def open(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Prepare the backend (create tables, connect). Called once before use."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources and end every running :meth:`watch`."""

    @abc.abstractmethod
    async def get(self, kind: Kind, space: str, key: str) -> bytes | None:
        """The value under (kind, space, key), or ``None``."""

    @abc.abstractmethod
    async def list(self, kind: Kind, space: str) -> list[bytes]:
        """All values of one kind in one space, keys in descending order."""

    @abc.abstractmethod
    async def list_all(self, kind: Kind) -> builtins.list[bytes]:
        """All values of one kind across every space (for cross-space rules)."""

    @abc.abstractmethod
    async def create(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Store a new value and return its revision; ``ConflictError`` if the key exists."""

    @abc.abstractmethod
    async def update(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Replace an existing value and return its revision; ``NotFoundError`` if absent."""

    @abc.abstractmethod
    async def delete(self, kind: Kind, space: str, key: str) -> int:
        """Remove a value and return the revision of the delete; ``NotFoundError`` if absent."""

    @abc.abstractmethod
    async def snapshot(self) -> Snapshot:
        """Every entry of every kind and space, consistent at one revision."""

    async def head(self) -> int:
        """The revision of the last write; this default takes a whole snapshot for it."""
        return (await self.snapshot()).revision

    @abc.abstractmethod
    def watch(self, after_revision: int) -> AsyncIterator[Change]:
        """Changes with a revision above ``after_revision``, in order, until close."""
