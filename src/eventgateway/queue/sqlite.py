"""``SqliteQueue``: the durable :class:`DeliveryQueue` (and :class:`DeliveryLog`) in one file.

How it is fast: one writer thread owns the write connection and commits whatever is
queued in one transaction (group commit, :mod:`.sqlite_writer`); accepts, leases, acks,
retries and dead letters all ride the same batches, the accepts (and the settles) of a
batch are written with a few multi-row statements, and leases claim up to 100 rows per
statement. The event loop never touches SQLite; reads for the delivery log use a second
connection on a thread of their own.

Bounds: unsettled deliveries and the bytes of their events are kept in a one-row
``counters`` table, changed in the same transactions as the rows they count. ``accept``
checks them inside its write transaction, after de-duplication and before writing, so
the check is exact even when several processes accept into one file, and a duplicate is
never refused.

How it avoids polling: ``lease`` waits on a wake-up fired when this process commits
something due (or when :meth:`SqliteQueue.notify` is called, e.g. because another
process sharing the file signalled that it committed), and otherwise sleeps exactly until
the earliest ``due_at`` it found — a retry's due time or a lease's expiry.

What survives what (WAL mode; ``accept`` returns only after its transaction committed):

* a process crash (``kill -9``, OOM, a bug) at any moment: everything committed, in every
  ``synchronous`` mode — the WAL is in the OS's page cache. Deliveries that were leased
  come back when their lease (``lease_s``) expires; an attempt in flight is made again.
* power loss or an OS crash: with ``synchronous="FULL"`` (the default) every accepted
  event (synced after its commit, before ``accept`` returns: ``sqlite_sync.py``); with
  ``"NORMAL"`` the last transactions before the failure may be lost (the
  database stays consistent); ``"OFF"`` may corrupt the file. Leases and settlements
  (acks, retries, dead letters) are committed without a sync of their own — the next
  accept's sync covers them — so power loss may undo the last of them: those deliveries
  are made again (at-least-once), no event is lost.

The file is separate from the config store's. Several processes may share it (an HTTP
ingest process beside a dispatcher process): SQLite serialises their writers, and each
process calls ``notify()`` when told that another one committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from eventgateway.errors import StoreError
from eventgateway.events.codec import encode_event, encode_json
from eventgateway.queue._common import Wakeup, dedup_scope, refusal, wait_until_due
from eventgateway.queue.base import Accepted, AttemptRecord, Delivery, DeliveryQueue, Room
from eventgateway.queue.sqlite_extend import SqliteExtendMixin
from eventgateway.queue.sqlite_forget import SqliteForgetMixin
from eventgateway.queue.sqlite_handoff import HandOffMixin, less_room
from eventgateway.queue.sqlite_health import SqliteHealthMixin
from eventgateway.queue.sqlite_lease import Leased, deliveries_of, lease_op, release_all_op
from eventgateway.queue.sqlite_log import Reader, SqliteLogMixin
from eventgateway.queue.sqlite_ops import AcceptOp, PreparedEvent, Refused
from eventgateway.queue.sqlite_replay import SqliteReplayMixin
from eventgateway.queue.sqlite_schema import check_synchronous
from eventgateway.queue.sqlite_settle import MAX_DEAD_LETTERS, SettleOp
from eventgateway.queue.sqlite_writer import GroupCommitWriter

__all__ = ["SqliteQueue"]


class SqliteQueue(
    SqliteHealthMixin,
    SqliteExtendMixin,
    HandOffMixin,
    SqliteForgetMixin,
    SqliteReplayMixin,
    SqliteLogMixin,
    DeliveryQueue,
):
    """A durable delivery queue and delivery log in one SQLite file (WAL).

    Args:
        path: the queue's database file; parents are created on :meth:`open`.
        max_deliveries: unsettled deliveries allowed before ``accept`` answers 429.
        max_bytes: bytes of stored events with unsettled deliveries allowed before 429.
        dedup_window_s: how long an event's (source, id) marks later copies duplicates.
        lease_s: how long a leased delivery stays invisible before it is handed out again,
            unless its holder renews the lease (``extend``) while the attempt runs.
        synchronous: SQLite's ``synchronous`` mode; see the module docstring.
        busy_timeout_s: how long a write waits for another process's write lock before
            it fails with :class:`StoreError`.
        max_dead_letters: dead letters kept (until redriven or purged) before
            ``dead_letter`` is refused, as in JetStream's dead-letter stream.
        clock: wall-clock seconds; tests pass a fake one and call :meth:`notify` after
            moving it.

    Raises:
        ConfigError: ``synchronous`` is not a SQLite mode.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        path: Path,
        *,
        max_deliveries: int = 1_000_000,
        max_bytes: int = 1 << 30,
        dedup_window_s: float = 300.0,
        lease_s: float = 60.0,
        synchronous: str = "FULL",
        busy_timeout_s: float = 10.0,
        max_dead_letters: int = MAX_DEAD_LETTERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._max_dead_letters = max_dead_letters
        self._max_deliveries = max_deliveries
        self._max_bytes = max_bytes
        self._dedup_window_s = dedup_window_s
        self._lease_s = lease_s
        self._synchronous = check_synchronous(synchronous)
        self._clock = clock
        self._wakeup = Wakeup()
        # Called after each of this process's commits that made deliveries due, for a
        # dispatcher in another process (``--dispatch worker``) to look at once.
        self.on_commit_wake: Callable[[], None] | None = None
        self._init_handoff()
        self._writer = GroupCommitWriter(
            path, self._synchronous, self._woken, busy_timeout_s=busy_timeout_s
        )
        self._reader = Reader(path, self._synchronous)
        self._opened = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or migrate the file, recount the bounds, and start the threads.

        Raises:
            StoreError: the file cannot be opened, is not a queue, or is newer.
        """
        if self._opened:
            return
        await self._writer.start()
        try:
            await self._reader.open()
        except BaseException:
            await self._writer.stop()
            raise
        self._opened = True

    async def close(self) -> None:
        """Wake every waiting ``lease``, commit what was submitted, and close. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.fire()
        if self._opened:
            await self._writer.stop()
            await self._reader.close()

    def _writing(self) -> GroupCommitWriter:
        if not self._opened or self._closed:
            state = "closed" if self._closed else "not open; call open() first"
            raise StoreError(f"the SQLite queue {self.path} is {state}")
        return self._writer

    # -- accept -----------------------------------------------------------------------------

    async def accept(self, items: Sequence[Accepted]) -> list[bool]:
        """Commit events with their deliveries; per item ``True`` if it was a duplicate.

        Raises:
            TooManyRequestsError: the new (non-duplicate) deliveries would take the queue
                past a bound; nothing of this call is written.
            StoreError: SQLite failed; nothing of this call was committed.
        """
        writer = self._writing()
        now = self._clock()
        prepared: list[PreparedEvent | None] = []
        for item in items:
            if not item.deliveries:
                prepared.append(None)
                continue
            event = item.event
            prepared.append(
                PreparedEvent(
                    scope=dedup_scope(item.deliveries),
                    event_id=event.id,
                    source=event.source,
                    type=event.type,
                    specversion=event.specversion,
                    body=encode_event(event),
                    deliveries=item.deliveries,
                    auth_requests=[
                        None if d.auth_request is None else encode_json(d.auth_request)
                        for d in item.deliveries
                    ],
                )
            )
        if not any(prepared):
            return [False] * len(items)
        ticket, reserved = self._reserve(prepared)
        op = AcceptOp(
            prepared,
            now,
            now - self._dedup_window_s,
            self._max_deliveries,
            self._max_bytes,
            hand_until=now + self._lease_s if ticket else None,
        )
        if not ticket:
            result = await writer.submit(op)
        else:
            result = await self._accept_handing(op, ticket, reserved)
        if isinstance(result, Refused):
            raise refusal(
                backlog=result.backlog,
                stored_bytes=result.stored_bytes,
                add_deliveries=result.add_deliveries,
                max_deliveries=self._max_deliveries,
                max_bytes=self._max_bytes,
            )
        return result

    # -- lease ------------------------------------------------------------------------------

    async def lease(
        self, max_count: int, *, exclude: Collection[str] = (), room: Room | None = None
    ) -> list[Delivery]:
        """Wait for due deliveries and lease up to ``max_count``, oldest first.

        ``exclude`` is read afresh each time the queue looks again, so a live set works;
        while only excluded subscriptions have due deliveries the lease waits, so call
        :meth:`notify` after taking one out of the set. Returns ``[]`` once the queue is
        closed.

        Raises:
            ValueError: ``max_count`` is less than 1.
            StoreError: SQLite failed; the handed deliveries are still held, for the
                next call.
        """
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, not {max_count}")
        while not self._closed:
            token = self._wakeup.token()
            writer = self._writing()
            excluding = frozenset(exclude)
            taken = self._take_handed(max_count, excluding, room)
            if len(taken) == max_count or (self._handing and not self._file_may_be_due(excluding)):
                if taken:
                    return self._hand_out(taken)
                await wait_until_due(token, self._next_due, self._clock)
                continue
            signals = self._signals
            # ``room`` is called on the writer thread: a read of the caller's counters.
            op = lease_op(
                max_count - len(taken),
                excluding,
                less_room(room, taken),
                self._lease_s,
                self._clock,
            )
            future: asyncio.Future[Leased] | None = None
            try:
                future = writer.submit(op, orphan=self._release, volatile=True)
                leased = await future
            except BaseException:
                # Cancelled, or the file failed (locked past the busy timeout): what was
                # taken of the handed deliveries is held again, credit not yet given
                # back, for the next lease; dropped here it would wait out its lease.
                self._handed.put_back(taken)
                # Cancelled after the writer resolved the future but before this task
                # resumed: the leases are ours, and nobody will see them. (Cancelled
                # earlier, the future is cancelled too and the writer calls _release.)
                if (
                    future is not None
                    and future.done()
                    and not future.cancelled()
                    and future.exception() is None
                ):
                    self._release(future.result())
                raise
            if self._closed:
                return []  # closed meanwhile: hand out nothing; the leases expire
            deliveries, unreadable = deliveries_of(leased, self._max_dead_letters)
            if unreadable:
                try:
                    await asyncio.gather(*(writer.submit(op, volatile=True) for op in unreadable))
                except BaseException:
                    self._handed.put_back(taken)
                    self._release(leased)  # the dead-lettered rows are no longer leased
                    raise
            if not leased.rows:  # nothing due in the file until a signal or next_due
                self._seen_signals, self._next_due = signals, leased.next_due
                self._seen_exclude = excluding
            if deliveries or taken:
                return deliveries + self._hand_out(taken)
            if not leased.rows:
                await wait_until_due(token, leased.next_due, self._clock)
        return []

    def _release(self, leased: Leased) -> None:
        """Hand back leases whose caller was cancelled before it received them."""
        self._release_rows([(row[0], leased.lease_until) for row in leased.rows])

    # -- settle -----------------------------------------------------------------------------

    async def ack(self, delivery: Delivery, attempt: AttemptRecord) -> None:
        """Mark the delivery delivered and log ``attempt``; a settled one is left alone.

        Raises:
            StoreError: SQLite failed.
        """
        now = self._clock()
        await self._settle(SettleOp(int(delivery.id), "delivered", attempt, now=now))

    async def retry_later(self, delivery: Delivery, delay_s: float, attempt: AttemptRecord) -> None:
        """Log ``attempt`` and make the delivery due again ``delay_s`` from now.

        Raises:
            StoreError: SQLite failed.
        """
        now = self._clock()
        op = SettleOp(int(delivery.id), "retry", attempt, due_at=now + delay_s, now=now)
        await self._settle(op)

    async def dead_letter(
        self, delivery: Delivery, reason: str, attempt: AttemptRecord | None
    ) -> None:
        """Keep the delivery as a dead letter with ``reason`` (and ``attempt``, if any).

        Raises:
            StoreError: SQLite failed, or ``max_dead_letters`` are kept: nothing was
                written, and the delivery comes back when its lease runs out.
        """
        now = self._clock()
        limit = self._max_dead_letters
        op = SettleOp(int(delivery.id), "dead", attempt, reason, now=now, max_dead_letters=limit)
        if await self._settle(op) is None:
            raise StoreError(
                f"cannot dead-letter delivery {delivery.id}: {limit} dead letters are kept "
                f"already; redrive or purge some (/v1/spaces/{delivery.space}/deadletters). The "
                "delivery stays queued and is tried again when its lease runs out"
            )

    async def _settle(self, op: SettleOp) -> bool | None:
        # Volatile: committed without a sync of its own; the next synced commit (an accept)
        # makes it durable. A process crash loses nothing (the WAL is in the page cache);
        # power loss may lose the last settlements, and a lost settlement is a delivery
        # made again — at-least-once — never an event lost.
        settled: bool | None = await self._writing().submit(op, volatile=True)
        return settled

    # -- signals and counters -----------------------------------------------------------------

    async def release_leases(self) -> int:
        """Hand every unexpired lease back now; how many there were.

        For a dispatcher that starts after its predecessor died (``--dispatch worker``: one
        leasing process per file): its leases would otherwise wait out ``lease_s``.
        Calling it while another process holds leases makes their deliveries twice.

        Raises:
            StoreError: SQLite failed.
        """
        released: int = await self._writing().submit(release_all_op(self._clock()))
        return released

    def _woken(self) -> None:
        self._signals += 1
        self._wakeup.fire()
        if self.on_commit_wake is not None:
            self.on_commit_wake()

    def notify(self) -> None:
        """Look for due deliveries now: another process committed, or a test moved the clock.

        Call it on the event loop's thread.
        """
        self._signals += 1
        self._wakeup.fire()

    def backlog(self) -> int:
        """Unsettled deliveries in the file, as of this process's last commit."""
        return self._writer.backlog

    def stats(self) -> dict[str, int]:
        """``backlog`` and ``bytes`` (as of the last commit), and the writer's work:
        ``transactions`` committed, ``items`` they carried, ``max_batch``, and
        ``failed_batches`` (batches retried op by op after an error)."""
        writer = self._writer
        return {
            "backlog": writer.backlog,
            "bytes": writer.bytes,
            "transactions": writer.transactions,
            "items": writer.items,
            "max_batch": writer.max_batch,
            "failed_batches": writer.failed_batches,
        }
