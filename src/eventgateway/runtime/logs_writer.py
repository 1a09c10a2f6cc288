"""The log store's writer thread: buffered lines, committed in batches (group commit).

The same idea as ``queue/sqlite_writer.py`` — one thread owns the connection, sleeps until
work arrives, then takes *everything* queued and commits it in one transaction, so a batch
grows by itself to whatever arrived during the previous commit — without that module's
futures per item: a log line needs no answer, so :meth:`LogWriter.offer` puts the call's
lines on a ``SimpleQueue`` as one item and returns. ``offer``, ``submit`` and ``stop``
belong to one thread, the event loop's (the runtime's pipe readers run there).

The buffer is bounded (``max_buffered_lines`` and ``max_buffered_bytes``): a handler
printing in a tight loop faster than the disk commits must not grow the gateway's memory
without bound. Lines that do not fit are dropped — the newest ones, so what is kept stays
contiguous — and counted per function; the next batch stores one ``system`` line per
function saying how many were lost, and the gateway logs a warning. Live tails are fed
before the buffer and lose nothing to this.

Reads and retention are *ops*, functions of the connection run on the same thread after
the lines buffered before them were committed: a query sees every line appended before
it was made, with no second connection to coordinate.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from eventgateway.errors import StoreError
from eventgateway.runtime.base import LogLine
from eventgateway.runtime.logs_schema import (
    COLUMNS,
    connect,
    insert_statement,
    rows_per_statement,
    store_error,
)
from eventgateway.runtime.logs_tail import dropped_marker

__all__ = ["LINE_OVERHEAD_BYTES", "LogWriter", "Op"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_STOP: Final = object()
_WAKE: Final = object()  # lines were dropped: write the notice
Op = Callable[[sqlite3.Connection], _T]

# What one buffered line costs beyond its text: the LogLine, its strings' headers and
# the list slot, measured roughly with sys.getsizeof.
LINE_OVERHEAD_BYTES: Final = 400


class _Request:
    __slots__ = ("future", "op")

    def __init__(self, op: Op[Any], future: asyncio.Future[Any]) -> None:
        self.op = op
        self.future = future


_Item = tuple[LogLine, ...] | _Request | object


class LogWriter:
    """The one writer of a ``logs.db`` in this process.

    Args:
        path: the database file (created, with its directory, if missing).
        max_buffered_lines: lines waiting for a commit at most; more are dropped.
        max_buffered_bytes: the same bound in (estimated) bytes.
        synchronous: ``PRAGMA synchronous``; ``NORMAL`` loses at most the last commits on
            a power cut, never on a crash of the gateway.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_buffered_lines: int,
        max_buffered_bytes: int,
        synchronous: str = "NORMAL",
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = path
        self._max_lines = max_buffered_lines
        self._max_bytes = max_buffered_bytes
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        # No lock on the hot path: with a Condition, a loop appending in a burst kept
        # re-taking the lock before the woken writer got the GIL back, and the writer
        # starved for seconds. A SimpleQueue put never blocks, and every counter below
        # has exactly one writing thread, so plain ints stay exact.
        self._inbox: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._offered_lines = 0  # loop thread
        self._offered_bytes = 0  # loop thread
        self._taken_lines = 0  # writer thread
        self._taken_bytes = 0  # writer thread
        self._dropped: dict[tuple[str, str], int] = {}  # loop thread; totals per function
        self._reported: dict[tuple[str, str], int] = {}  # writer thread
        self._stopping = False  # loop thread
        self._in_hand: list[_Request] = []  # writer thread: taken, not yet answered
        self._rows_per_statement = 1  # set by _connect()
        self._full_insert = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped_lines = 0  # loop thread: did not fit in the buffer, or came after stop()
        self.failed_lines = 0  # writer thread: lost because a commit failed
        self.committed_lines = 0  # writer thread
        self.transactions = 0
        self.max_batch = 0

    # -- the event loop's side (one thread: offer, submit and stop are not thread-safe) --

    async def start(self) -> None:
        """Open (creating or migrating) the database on the writer thread.

        Raises:
            StoreError: the file cannot be opened or is not a log store.
        """
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"log-writer:{self.path.name}", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._stopping = True  # nothing will serve requests: refuse them
            raise

    async def stop(self) -> None:
        """Commit what is buffered, run what was submitted, close, end the thread."""
        if self._stopping:
            return
        self._stopping = True
        self._inbox.put(_STOP)
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def offer(self, lines: Sequence[LogLine]) -> None:
        """Buffer ``lines`` for the next commit; drop (and count) what does not fit."""
        if not lines:
            return
        if self._stopping:
            self.dropped_lines += len(lines)
            return
        size = sum(len(line.message) for line in lines) + LINE_OVERHEAD_BYTES * len(lines)
        buffered_lines = self._offered_lines - self._taken_lines
        buffered_bytes = self._offered_bytes - self._taken_bytes
        if (
            buffered_lines + len(lines) <= self._max_lines
            and buffered_bytes + size <= self._max_bytes
        ):
            self._inbox.put(tuple(lines))  # a copy: the caller may reuse its list
            self._offered_lines += len(lines)
            self._offered_bytes += size
            return
        # Keep lines while they fit; once one does not, drop the rest of the call too, so
        # that what is stored has no holes in the middle of a burst.
        kept = kept_bytes = 0
        for line in lines:
            line_size = len(line.message) + LINE_OVERHEAD_BYTES
            if (
                buffered_lines + kept + 1 > self._max_lines
                or buffered_bytes + kept_bytes + line_size > self._max_bytes
            ):
                break
            kept += 1
            kept_bytes += line_size
        if kept:
            self._inbox.put(tuple(lines[:kept]))
            self._offered_lines += kept
            self._offered_bytes += kept_bytes
        for line in lines[kept:]:
            key = (line.space, line.function_id)
            self._dropped[key] = self._dropped.get(key, 0) + 1
        self.dropped_lines += len(lines) - kept
        self._inbox.put(_WAKE)  # so that the notice is written even if nothing else comes

    def submit(self, op: Op[_T]) -> asyncio.Future[_T]:
        """Run ``op`` on the writer thread once the lines offered so far are committed.

        Raises:
            StoreError: the writer is not started, or stopped.
        """
        loop = self._loop
        if loop is None:
            raise StoreError(f"the function log store {self.path} is not open")
        if self._stopping:
            raise StoreError(f"the function log store {self.path} is closed")
        future: asyncio.Future[_T] = loop.create_future()
        self._inbox.put(_Request(op, future))
        return future

    @property
    def buffered_lines(self) -> int:
        """Lines waiting for a commit."""
        return self._offered_lines - self._taken_lines

    # -- the writer thread ----------------------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._call(_settle, ready, False, exc)
            return
        self._call(_settle, ready, True, None)
        try:
            self._serve(conn)
        except BaseException as exc:  # a bug: fail loudly rather than leave callers waiting
            logger.exception("The function log writer of %s stopped", self.path)
            self._call(self._refuse_all, exc, self._in_hand)
        finally:
            conn.close()

    def _refuse_all(self, exc: BaseException, in_hand: list[_Request]) -> None:
        # On the loop's thread, like submit(): nothing can slip in after the drain.
        self._stopping = True
        error = StoreError(f"the function log store {self.path} stopped: {exc!r}")
        error.__cause__ = exc
        for request in in_hand:
            _settle(request.future, False, error)
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Request):
                _settle(item.future, False, error)

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, self._synchronous, busy_timeout_s=self._busy_timeout_s)
        self._rows_per_statement = rows_per_statement(conn)
        self._full_insert = insert_statement(self._rows_per_statement)
        return conn

    def _serve(self, conn: sqlite3.Connection) -> None:
        inbox = self._inbox
        while True:
            lines: list[LogLine] = []
            requests: list[_Request] = []
            self._in_hand = requests  # failed by _refuse_all if this thread dies
            stop = False
            item = inbox.get()
            while True:  # take everything that is queued: one transaction for all of it
                if isinstance(item, tuple):
                    lines.extend(item)
                elif isinstance(item, _Request):
                    requests.append(item)
                elif item is _STOP:
                    stop = True
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
            if lines:
                self._taken_lines += len(lines)
                self._taken_bytes += sum(len(line.message) for line in lines)
                self._taken_bytes += LINE_OVERHEAD_BYTES * len(lines)
            notices = self._notices()
            if lines or notices:
                self._commit(conn, lines + notices)
            for request in requests:  # after the lines offered before them are committed
                self._execute(conn, request)
            if stop:  # offer() and submit() refuse work once stop() was called
                return

    def _notices(self) -> list[LogLine]:
        why = "the log store could not keep up (the function printed faster than disk writes)"
        notices: list[LogLine] = []
        for key, total in dict(self._dropped).items():  # dict(): one atomic copy
            count = total - self._reported.get(key, 0)
            if count:
                self._reported[key] = total
                space, function_id = key
                logger.warning(
                    "Dropped %d log lines of function %r in space %r: %s",
                    count,
                    function_id,
                    space,
                    why,
                )
                notices.append(dropped_marker(space, function_id, count, why))
        return notices

    def _commit(self, conn: sqlite3.Connection, lines: list[LogLine]) -> None:
        params = [
            value
            for line in lines
            for value in (
                line.space,
                line.function_id,
                line.request_id,
                line.timestamp,
                line.stream,
                line.message,
            )
        ]
        step = self._rows_per_statement * COLUMNS
        try:
            conn.execute("BEGIN IMMEDIATE")
            for start in range(0, len(params), step):
                chunk = params[start : start + step]
                statement = (
                    self._full_insert
                    if len(chunk) == step
                    else insert_statement(len(chunk) // COLUMNS)
                )
                conn.execute(statement, chunk)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn, self.path)
            # Nobody awaits a line: keeping the batch to retry would let a broken disk grow
            # memory without bound, so it is lost, counted and logged.
            self.failed_lines += len(lines)
            logger.error(
                "Lost %d function log lines: %s", len(lines), store_error(self.path, "commit", exc)
            )
            return
        self.committed_lines += len(lines)
        self.transactions += 1
        self.max_batch = max(self.max_batch, len(lines))

    def _execute(self, conn: sqlite3.Connection, request: _Request) -> None:
        try:
            result = request.op(conn)
        except sqlite3.Error as exc:
            _rollback(conn, self.path)
            self._call(_settle, request.future, False, store_error(self.path, "run", exc))
        except BaseException as exc:
            _rollback(conn, self.path)
            self._call(_settle, request.future, False, exc)
        else:
            self._call(_settle, request.future, True, result)

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            logger.debug("event loop closed; dropping a log writer result")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _rollback(conn: sqlite3.Connection, path: Path) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed on %s", path)
