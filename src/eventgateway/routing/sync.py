"""Keeps the current :class:`RoutingTable` in step with the :class:`ConfigStore`.

The table is rebuilt from the entities whenever the store's watch reports a change, and
swapped in one assignment, so the Events API always reads one consistent snapshot without
locks. Several changes that arrive together cause one rebuild.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from eventgateway.errors import StoreError
from eventgateway.model.entities import (
    ENTITY_TYPES,
    Cors,
    Entity,
    EventType,
    Function,
    Kind,
    Subscription,
    decode_entity,
)
from eventgateway.routing.table import RoutingTable
from eventgateway.store.base import Change, ConfigStore

__all__ = ["CATCH_UP_TIMEOUT_S", "RoutingSync"]

logger = logging.getLogger(__name__)

OnTable = Callable[[RoutingTable], None]
CATCH_UP_TIMEOUT_S = 2.0


class RoutingSync:
    """Owns the live routing table of one gateway process."""

    def __init__(self, store: ConfigStore, *, on_table: OnTable | None = None) -> None:
        self._store = store
        self._entities: dict[tuple[Kind, str, str], Entity] = {}
        self._revision = 0
        self._on_table = on_table
        self._lock = asyncio.Lock()
        self._following = False  # run() is applying the watch
        self._moved = asyncio.Event()  # set (and replaced) whenever the revision moves on
        self.table = RoutingTable.empty()

    @property
    def revision(self) -> int:
        """The store revision the current table reflects."""
        return self._revision

    def entities(self) -> list[Entity]:
        """The routed entities the current table was built from."""
        return list(self._entities.values())

    async def refresh(self) -> None:
        """Rebuild from a fresh snapshot (at start, and after writes made through this process)."""
        async with self._lock:
            snapshot = await self._store.snapshot()
            if snapshot.revision < self._revision:
                return
            self._entities = {
                (entry.kind, entry.space, entry.key): decode_entity(entry.kind, entry.value)
                for entry in snapshot.entries
                if entry.kind in ENTITY_TYPES  # spaces and keys are the key ring's
            }
            self._publish(snapshot.revision)

    async def catch_up(self, timeout_s: float = CATCH_UP_TIMEOUT_S) -> None:
        """Have the table reflect every write the store holds now (after a write made
        through this process, before it is answered).

        While :meth:`run` follows the watch, this waits for the watch to reach the
        store's head revision (one cheap read): a :meth:`refresh` after each write read
        the whole store, every key ever written on NATS (QA: 10 → 253 ms per write after
        1,500 event types made and deleted). Without a watch, or if it has not got there
        within ``timeout_s``, it refreshes.
        """
        if not self._following:
            await self.refresh()
            return
        head = await self._store.head()
        try:
            async with asyncio.timeout(timeout_s):
                while self._revision < head:
                    await self._moved.wait()
        except TimeoutError:
            logger.info(
                "routing watch behind revision %d after %.1f s: refreshing", head, timeout_s
            )
            await self.refresh()

    async def run(self) -> None:
        """Follow the store's watch until it ends (the store closes)."""
        pending: list[Change] = []
        watch = self._store.watch(self._revision)
        queue: asyncio.Queue[Change | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for change in watch:
                    queue.put_nowait(change)
            except StoreError:
                logger.exception("config store watch failed; routing table frozen")
            finally:
                queue.put_nowait(None)

        pump_task = asyncio.create_task(pump())
        self._following = True
        try:
            while True:
                change = await queue.get()
                if change is None:
                    return
                pending.append(change)
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is None:
                        break
                    pending.append(more)
                await self._apply(pending)
                pending.clear()
        finally:
            self._following = False
            pump_task.cancel()

    async def _apply(self, changes: list[Change]) -> None:
        async with self._lock:
            fresh = [change for change in changes if change.revision > self._revision]
            if not fresh:
                return
            routed = [change for change in fresh if change.kind in ENTITY_TYPES]
            if not routed:
                # A space or key changed: nothing to rebuild, but the revision moves on.
                self._moved_to(fresh[-1].revision)
                return
            for change in routed:
                key = (change.kind, change.space, change.key)
                if change.value is None:
                    self._entities.pop(key, None)
                else:
                    self._entities[key] = decode_entity(change.kind, change.value)
            self._publish(fresh[-1].revision)

    def _publish(self, revision: int) -> None:
        values = self._entities.values()
        self.table = RoutingTable.build(
            event_types=[e for e in values if isinstance(e, EventType)],
            functions=[e for e in values if isinstance(e, Function)],
            subscriptions=[e for e in values if isinstance(e, Subscription)],
            cors=[e for e in values if isinstance(e, Cors)],
            revision=revision,
        )
        self._moved_to(revision)
        if self._on_table is not None:
            self._on_table(self.table)

    def _moved_to(self, revision: int) -> None:
        self._revision = revision
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
