"""``SpaceAdmin`` forgets a deleted space's delivery log and function logs: after the
tombstone, and again before the operator claims the name anew, so that a forget cut short
(a crash, a failing disk) or records that arrived after the delete (a late settle) never
reach the next owner. Real SQLite files for the queue and the logs."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from eventgateway.auth.keyring import KeyRing
from eventgateway.auth.spaces import SpaceAdmin
from eventgateway.errors import StoreError
from eventgateway.queue.log_views import SpaceHoldings
from eventgateway.queue.sqlite import SqliteQueue
from eventgateway.runtime.base import LogLine
from eventgateway.runtime.logs_sqlite import SqliteLogStore
from eventgateway.store.memory import MemoryStore
from tests.auth.authkit import START_S, Clock
from tests.queue.kit import attempt, lease, put


@dataclass
class Parts:
    store: MemoryStore
    ring: KeyRing
    queue: SqliteQueue
    logs: SqliteLogStore
    failures: int = 0  # forgets still to fail, after the queue's part and before the logs'

    async def forget(self, space: str) -> None:
        await self.queue.forget_space(space)
        if self.failures:
            self.failures -= 1
            raise StoreError("the function log store logs.db failed to run: disk I/O error")
        await self.logs.forget_space(space)

    def admin(self) -> SpaceAdmin:
        return SpaceAdmin(self.store, self.ring, holdings=self.queue.holdings, forget=self.forget)

    async def history(self, space: str, event_id: str) -> None:
        """An event of ``space``, delivered, and a log line of its function."""
        await put(self.queue, event_id, "s1", space=space)
        for delivery in await lease(self.queue):
            await self.queue.ack(delivery, attempt())
        self.logs.append([LogLine(space, "fn", "req-1", START_S, "stdout", f"saw {event_id}")])

    async def kept(self, space: str) -> tuple[bool, int]:
        """Whether the delivery log still lists an event of ``space``; its log lines."""
        events = await self.queue.list_events(space)
        return bool(events), len(await self.logs.query(space, "fn"))


@pytest.fixture
async def parts(tmp_path: pathlib.Path) -> AsyncIterator[Parts]:
    store = MemoryStore()
    await store.open()
    ring = KeyRing(store, clock=Clock())
    await ring.refresh()
    queue = SqliteQueue(tmp_path / "queue.db")
    logs = SqliteLogStore(tmp_path / "logs.db")
    await queue.open()
    await logs.open()
    yield Parts(store, ring, queue, logs)
    await logs.close()
    await queue.close()
    await store.close()


async def test_a_forget_cut_short_is_completed_when_the_name_is_claimed_again(
    parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    admin = parts.admin()
    await admin.claim("acme")
    await parts.history("acme", "e1")
    parts.failures = 1

    with caplog.at_level(logging.ERROR, logger="eventgateway.auth.spaces"):
        await admin.delete("acme")  # deleted all the same: the claim completes the forget

    assert await parts.kept("acme") == (False, 1)
    assert "space 'acme' is deleted, but its delivery log and function logs" in caplog.text
    assert parts.ring.claimed() == []
    await admin.claim("acme", privileged=True)
    assert await parts.kept("acme") == (False, 0)


async def test_records_that_arrive_after_the_delete_are_forgotten_before_the_claim(
    parts: Parts,
) -> None:
    admin = parts.admin()
    await admin.claim("acme")
    await admin.delete("acme")
    await parts.history("acme", "late")  # e.g. a settle or a log line still on its way

    await admin.claim("acme", privileged=True)

    assert await parts.kept("acme") == (False, 0)


async def test_a_claim_whose_forget_fails_hands_out_no_key(parts: Parts) -> None:
    admin = parts.admin()
    await admin.claim("acme")
    await admin.delete("acme")
    await parts.history("acme", "late")
    parts.failures = 1

    with pytest.raises(StoreError):
        await admin.claim("acme", privileged=True)

    assert parts.ring.claimed() == []
    assert await parts.store.list("keys", "acme") == []
    await admin.claim("acme", privileged=True)
    assert await parts.kept("acme") == (False, 0)


async def test_a_failing_holdings_query_leaves_the_space_as_it_was(parts: Parts) -> None:
    async def unreachable(space: str) -> SpaceHoldings:
        raise StoreError("NATS JetStream could not count what space 'acme' holds: timeout")

    admin = SpaceAdmin(parts.store, parts.ring, holdings=unreachable, forget=parts.forget)
    await admin.claim("acme")
    await parts.history("acme", "e1")

    with pytest.raises(StoreError):
        await admin.delete("acme")

    assert (await admin.get("acme")).active
    assert await parts.kept("acme") == (True, 1)
