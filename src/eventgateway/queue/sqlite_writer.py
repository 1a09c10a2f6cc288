"""Group commit: one thread owns the write connection and commits work in batches.

Callers on the event loop :meth:`~GroupCommitWriter.submit` an *op* — a function of a
:class:`Tx` — and await its future. The writer thread sleeps until work arrives, then takes
*everything* queued, runs it in one transaction, commits, and resolves all the futures
with one ``call_soon_threadsafe``. Under load a batch grows by itself to whatever arrived
during the previous commit; there is no timer (a fixed 1 ms window measured 2–3x slower
than draining, see ``shared/research/building-blocks.md``), so an idle queue commits a
lone item at once.

Consecutive ops of one :class:`BatchOp` class (e.g. 64 accepts, or 100 acks) run as one
call with multi-row statements: a few Python calls, and GIL hand-offs with the event loop
(``sqlite3`` releases it around every statement; under a busy loop each can wait up to
``sys.getswitchinterval()``), per batch instead of per op.

If a batch fails, it is rolled back and each op is retried in a transaction of its own, so
one op's failure reaches only its caller. Ops must therefore keep their effects in the
database (or their return value) until the commit: the loop applies results once durable.
"""

from __future__ import annotations

import abc
import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Self, TypeVar

from eventgateway.errors import StoreDamagedError, StoreError, store_error
from eventgateway.queue.sqlite_schema import connect, migrate, recount
from eventgateway.queue.sqlite_sync import SyncThread, WalSync

__all__ = ["BatchOp", "GroupCommitWriter", "Tx"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_STOP: Final = object()


class Tx:
    """What an op sees: the connection inside an open transaction, and what to report.

    Ops add to ``backlog_delta``/``bytes_delta`` for the shared ``counters`` row and set
    ``wake`` when they made something due that a waiting ``lease`` should look at.
    """

    __slots__ = ("backlog_delta", "bytes_delta", "conn", "results", "wake")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.backlog_delta = 0
        self.bytes_delta = 0
        self.wake = False
        self.results: list[Any] = []


class BatchOp(abc.ABC, Generic[_T]):
    """An op that runs together with the consecutive ops of its class, in one call."""

    @classmethod
    @abc.abstractmethod
    def run_many(cls, tx: Tx, ops: Sequence[Self]) -> list[_T]:
        """Run ``ops`` (in order, as if one by one) and return one result per op."""

    def __call__(self, tx: Tx) -> _T:
        return self.run_many(tx, [self])[0]


@dataclass(slots=True)
class _Item(Generic[_T]):
    op: Callable[[Tx], _T]
    future: asyncio.Future[_T]
    orphan: Callable[[_T], None] | None
    volatile: bool


_Resolved = tuple[_Item[Any], bool, Any]  # (item, succeeded, result or exception)


class GroupCommitWriter:
    """The one writer of a queue file in this process.

    Args:
        path: the database file.
        synchronous: the ``PRAGMA synchronous`` mode.
        on_wake: called on the event loop after a commit in which an op set ``Tx.wake``.
        busy_timeout_s: how long to wait for another process's write lock.
    """

    def __init__(
        self,
        path: Path,
        synchronous: str,
        on_wake: Callable[[], None],
        *,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._on_wake = on_wake
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()  # makes "not stopped, so enqueue" atomic with stop()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._file_lock: int | None = None  # serialises the file's writers across processes
        self._sync = WalSync(path, synchronous)  # syncs happen outside the lock
        self._syncer: SyncThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Written by the writer thread after each commit, read on the loop.
        self.backlog = 0
        self.bytes = 0
        self.transactions = 0
        self.items = 0
        self.max_batch = 0
        self.failed_batches = 0
        self.damaged: str | None = None  # what SQLite said of a damaged file, if it did

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database (creating or migrating it) on the writer thread.

        Raises:
            StoreError: the file cannot be opened or prepared.
        """
        loop = asyncio.get_running_loop()
        self._loop = loop
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"queue-writer:{self._path.name}", daemon=True
        )
        self._thread.start()
        await ready

    async def stop(self) -> None:
        """Commit what was submitted, close the connection, and end the thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._inbox.put(_STOP)
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def submit(
        self,
        op: Callable[[Tx], _T],
        *,
        orphan: Callable[[_T], None] | None = None,
        volatile: bool = False,
    ) -> asyncio.Future[_T]:
        """Queue ``op`` for the next transaction; the future resolves after the commit.

        ``orphan`` receives the committed result if the caller stopped waiting (was
        cancelled) meanwhile, so that it can undo what nobody will use (e.g. leases).
        ``volatile`` ops (leases, settlements) write nothing whose loss to power failure
        loses an event (at worst a delivery is made again): they run first, in a
        transaction of their own committed without a sync, so they wait for at most the
        transaction in progress, never for a disk sync of their own.

        Raises:
            StoreError: the writer is stopped.
        """
        assert self._loop is not None, "start() first"
        future: asyncio.Future[_T] = self._loop.create_future()
        with self._lock:
            if self._stopped:
                raise StoreError(f"the SQLite queue {self._path} is closed")
            self._inbox.put(_Item(op, future, orphan, volatile))
        return future

    # -- the writer thread --------------------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error = StoreError(f"cannot create the directory of {self._path}: {exc}")
            error.__cause__ = exc
            self._call(ready.set_exception, error)
            return
        try:
            conn = connect(self._path, self._synchronous, busy_timeout_s=self._busy_timeout_s)
            try:
                migrate(conn, self._path)
                self.backlog, self.bytes = recount(conn)
                self._sync.prepare(conn)
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            self._call(ready.set_exception, _translate(exc, self._path, "open"))
            return
        except BaseException as exc:  # StoreError from migrate, or a bug: report it
            self._call(ready.set_exception, exc)
            return
        try:
            self._file_lock = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            conn.close()
            self._call(ready.set_exception, StoreError(f"cannot open {self._path}.lock: {exc}"))
            return
        self._call(ready.set_result, None)
        self._syncer = SyncThread(self._sync, self._synced)
        try:
            self._serve(conn)
        finally:
            self._syncer.stop()
            try:
                self._sync.close(conn)
            except (sqlite3.Error, OSError):
                logger.exception("could not restore the sync level of %s", self._path)
            conn.close()
            os.close(self._file_lock)
            self._file_lock = None

    def _serve(self, conn: sqlite3.Connection) -> None:
        inbox = self._inbox
        while True:
            batch: list[_Item[Any]] = []
            stop = False
            entry = inbox.get()
            while True:
                if entry is _STOP:
                    stop = True
                else:
                    batch.append(entry)  # type: ignore[arg-type]  # only items and _STOP
                try:
                    entry = inbox.get_nowait()
                except queue.Empty:
                    break
            volatile = [item for item in batch if item.volatile]
            if volatile:  # not synced: a lost lease expires, a lost settlement redelivers
                self._commit_batch(conn, volatile, durable=False)
                batch = [item for item in batch if not item.volatile]
            if batch:
                self._commit_batch(conn, batch, durable=True)
            if stop:
                return

    def _commit_batch(
        self, conn: sqlite3.Connection, batch: list[_Item[Any]], *, durable: bool
    ) -> None:
        wake = False
        try:
            results, wake = self._transaction(conn, batch)
            resolved: list[_Resolved] = [
                (item, True, result) for item, result in zip(batch, results, strict=True)
            ]
        except _OpFailed as failed:
            if len(batch) == 1:
                resolved = [(batch[0], False, _translate(failed.error, self._path))]
            else:
                # Find the op that failed: each one again, alone.
                self.failed_batches += 1
                resolved = []
                for item in batch:
                    try:
                        (result,), woke = self._transaction(conn, [item])
                        resolved.append((item, True, result))
                        wake = wake or woke
                    except _OpFailed as single:
                        resolved.append((item, False, _translate(single.error, self._path)))
                    except BaseException as exc:
                        resolved.append((item, False, _translate(exc, self._path)))
        except BaseException as exc:
            # BEGIN or COMMIT failed (locked past busy_timeout, disk full, I/O error):
            # every op would fail the same way, so do not try them one by one.
            self.failed_batches += 1
            resolved = [(item, False, _translate(exc, self._path)) for item in batch]
        for _, ok, outcome in resolved:
            if not ok and isinstance(outcome, StoreDamagedError):
                self.damaged = str(outcome.__cause__ or outcome)  # SQLite's words, no path
        if durable and self._syncer is not None and any(ok for _, ok, _ in resolved):
            self._syncer.put((resolved, wake))  # nobody hears of it before the sync
        else:
            self._call(self._deliver, resolved, wake)

    def _synced(self, outcome: tuple[list[_Resolved], bool], error: OSError | None) -> None:
        resolved, wake = outcome
        if error is not None:
            failure = StoreError(f"cannot sync the SQLite queue {self._path}: {error}")
            resolved = [(item, False, failure if ok else value) for item, ok, value in resolved]
        self._call(self._deliver, resolved, wake)

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[_Item[Any]]
    ) -> tuple[list[Any], bool]:
        tx = Tx(conn)
        lock = self._file_lock
        if lock is not None:
            # Another process may write this file (``--dispatch worker``). SQLite's own
            # wait for its lock sleeps 1, 2, 5, 10… ms between tries; a blocking flock
            # wakes the moment the other writer is done.
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            self._locked_transaction(conn, tx, batch)
            self._sync.after_commit(conn)  # a checkpoint, now and then: under the lock
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self.transactions += 1
        self.items += len(batch)
        self.max_batch = max(self.max_batch, len(batch))
        return tx.results, tx.wake

    def _locked_transaction(
        self, conn: sqlite3.Connection, tx: Tx, batch: list[_Item[Any]]
    ) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                results = self._run_ops(tx, [item.op for item in batch])
            except BaseException as exc:
                raise _OpFailed(exc) from exc
            # One statement per transaction keeps the shared bounds exact for every
            # process, and reads back what the other processes did meanwhile.
            if tx.backlog_delta or tx.bytes_delta:
                backlog, stored = conn.execute(
                    "UPDATE counters SET backlog = backlog + ?, bytes = bytes + ? "
                    "WHERE id = 1 RETURNING backlog, bytes",
                    (tx.backlog_delta, tx.bytes_delta),
                ).fetchone()
            else:  # e.g. only refusals: commit nothing, so no sync
                backlog, stored = conn.execute("SELECT backlog, bytes FROM counters").fetchone()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    logger.exception("rollback failed on %s", self._path)
            raise
        self.backlog, self.bytes = backlog, stored
        tx.results = results

    @staticmethod
    def _run_ops(tx: Tx, ops: list[Callable[[Tx], Any]]) -> list[Any]:
        results: list[Any] = []
        start, end = 0, len(ops)
        while start < end:
            op = ops[start]
            if isinstance(op, BatchOp):
                kind, stop = type(op), start + 1
                while stop < end and type(ops[stop]) is kind:
                    stop += 1
                results.extend(kind.run_many(tx, ops[start:stop]))  # type: ignore[arg-type]  # all of type kind
                start = stop
            else:
                results.append(op(tx))
                start += 1
        return results

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.debug("event loop closed; dropping a writer result")

    # -- back on the event loop -----------------------------------------------------------

    def _deliver(self, resolved: list[_Resolved], wake: bool) -> None:
        for item, ok, value in resolved:
            future = item.future
            if future.done():  # cancelled while the op was in flight
                if ok and item.orphan is not None:
                    item.orphan(value)
            elif ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if wake:
            self._on_wake()


class _OpFailed(Exception):
    """An op raised (rather than BEGIN or COMMIT failing): worth retrying the others."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _translate(exc: BaseException, path: Path, action: str = "commit") -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return store_error(f"the SQLite queue {path} failed to {action}: {exc}", exc)
    return exc
