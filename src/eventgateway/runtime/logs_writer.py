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
contiguous — and counted per function; once there is room again (or before the next
query) one ``system`` line per function saying how many were lost takes their place, and
the gateway logs a warning.

Every line taken, notices included, gets a *position* on the event loop's thread: 0, 1,
2… in the order taken. Its row's ``seq`` is the position plus the file's base (one more
than its largest ``seq`` when opened), so live tails, which get each taken line with its
position through ``on_taken``, can read the file back from where they fell behind.

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
from eventgateway.runtime.logs_schema import COLUMNS, Inserter, connect, store_error
from eventgateway.runtime.logs_tail import dropped_marker

__all__ = ["LINE_OVERHEAD_BYTES", "LogWriter", "Op"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_STOP: Final = object()
_WAKE: Final = object()  # lines were dropped: report them once the buffer has drained
_DROP_REASON: Final = (
    "the log store could not keep up (the function printed faster than disk writes)"
)
Op = Callable[[sqlite3.Connection], _T]
OnTaken = Callable[[int, Sequence[LogLine]], None]

# What one buffered line costs beyond its text: the LogLine, its strings' headers and
# the list slot, measured roughly with sys.getsizeof.
LINE_OVERHEAD_BYTES: Final = 400


class _Request:
    __slots__ = ("future", "op")

    def __init__(self, op: Op[Any], future: asyncio.Future[Any]) -> None:
        self.op = op
        self.future = future


_Lines = tuple[int, tuple[LogLine, ...]]  # the position of the first, and the lines
_Item = _Lines | _Request | object


class LogWriter:
    """The one writer of a ``logs.db`` in this process.

    Args:
        path: the database file (created, with its directory, if missing).
        max_buffered_lines: lines waiting for a commit at most; more are dropped.
        max_buffered_bytes: the same bound in (estimated) bytes.
        synchronous: ``PRAGMA synchronous``; ``NORMAL`` loses at most the last commits on
            a power cut, never on a crash of the gateway.
        on_taken: called on the event loop's thread with ``(position, lines)`` for the
            lines taken into the buffer (``lines[i]`` is at ``position + i``).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_buffered_lines: int,
        max_buffered_bytes: int,
        synchronous: str = "NORMAL",
        busy_timeout_s: float = 10.0,
        on_taken: OnTaken | None = None,
    ) -> None:
        self.path = path
        self._on_taken = on_taken
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
        self._next_position = 0  # loop thread
        self._dropped: dict[tuple[str, str], int] = {}  # loop thread; not yet reported
        self._stopping = False  # loop thread
        self.base_seq = 0  # writer thread: seq of position 0 (set when the file is opened)
        self._in_hand: list[_Request] = []  # writer thread: taken, not yet answered
        self._inserter: Inserter | None = None  # set by _connect()
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
        if self._dropped:
            self._report_drops()
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
            if self._dropped:  # these come after the drops: the notice goes first
                self._report_drops()
            self._take(tuple(lines), size)  # a copy: the caller may reuse its list
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
            if self._dropped:
                self._report_drops()
            self._take(tuple(lines[:kept]), kept_bytes)
        for line in lines[kept:]:
            key = (line.space, line.function_id)
            self._dropped[key] = self._dropped.get(key, 0) + 1
        self.dropped_lines += len(lines) - kept
        self._inbox.put(_WAKE)  # so that the notice is written even if nothing else comes

    def _take(self, lines: tuple[LogLine, ...], size: int) -> None:
        position = self._next_position
        self._next_position += len(lines)
        self._inbox.put((position, lines))
        self._offered_lines += len(lines)
        self._offered_bytes += size
        if self._on_taken is not None:
            self._on_taken(position, lines)

    def _report_drops(self) -> None:
        # On the loop's thread, so that the notice gets a position (and reaches live
        # tails) like any line; it may go over the bound by one line per function.
        notices: list[LogLine] = []
        for (space, function_id), count in self._dropped.items():
            logger.warning(
                "Dropped %d log lines of function %r in space %r: %s",
                count,
                function_id,
                space,
                _DROP_REASON,
            )
            notices.append(dropped_marker(space, function_id, count, _DROP_REASON))
        self._dropped.clear()
        size = sum(len(line.message) + LINE_OVERHEAD_BYTES for line in notices)
        self._take(tuple(notices), size)

    def _drained(self) -> None:
        # Called back by the writer thread once it took the lines offered before a drop.
        if self._dropped and not self._stopping:
            self._report_drops()

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
        if self._dropped:  # a query sees the notice of lines dropped before it
            self._report_drops()
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
        (self.base_seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM logs").fetchone()
        self._inserter = Inserter(conn)
        return conn

    def _serve(self, conn: sqlite3.Connection) -> None:
        inbox = self._inbox
        while True:
            batches: list[_Lines] = []
            requests: list[_Request] = []
            self._in_hand = requests  # failed by _refuse_all if this thread dies
            stop = drained = False
            item = inbox.get()
            while True:  # take everything that is queued: one transaction for all of it
                if isinstance(item, tuple):
                    batches.append(item)
                elif isinstance(item, _Request):
                    requests.append(item)
                elif item is _STOP:
                    stop = True
                elif item is _WAKE:
                    drained = True
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
            if batches:
                count = sum(len(lines) for _, lines in batches)
                self._taken_lines += count
                self._taken_bytes += sum(
                    len(line.message) for _, lines in batches for line in lines
                )
                self._taken_bytes += LINE_OVERHEAD_BYTES * count
                self._commit(conn, batches)
            if drained:
                self._call(self._drained)
            for request in requests:  # after the lines offered before them are committed
                self._execute(conn, request)
            if stop:  # offer() and submit() refuse work once stop() was called
                return

    def _commit(self, conn: sqlite3.Connection, batches: list[_Lines]) -> None:
        base = self.base_seq
        params = [
            value
            for position, lines in batches
            for offset, line in enumerate(lines)
            for value in (
                base + position + offset,
                line.space,
                line.function_id,
                line.request_id,
                line.timestamp,
                line.stream,
                line.message,
            )
        ]
        count = len(params) // COLUMNS
        assert self._inserter is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._inserter.insert(conn, params)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn, self.path)
            # Nobody awaits a line: keeping the batch to retry would let a broken disk grow
            # memory without bound, so it is lost, counted and logged.
            self.failed_lines += count
            logger.error(
                "Lost %d function log lines: %s", count, store_error(self.path, "commit", exc)
            )
            return
        self.committed_lines += count
        self.transactions += 1
        self.max_batch = max(self.max_batch, count)

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
