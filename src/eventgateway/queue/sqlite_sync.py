"""When the queue file's commits reach the disk: syncs outside the write lock.

SQLite's ``synchronous=FULL`` syncs the WAL inside ``COMMIT``, while the transaction still
holds the file's write lock — and with ``--dispatch worker`` that lock (our ``flock``) is
what the delivery worker's leases and settlements wait for. So the writer connection runs
with ``synchronous=OFF`` and :class:`WalSync` does the two things ``FULL`` would have done:

* after a durable commit (an accept, a replay…) it ``fsync``\\ s the WAL file — once the
  lock is released, before any caller hears of the commit. A 202 still means "on disk".
  The sync runs on a thread of its own (:class:`SyncThread`), so the writer starts the
  next transaction meanwhile; one sync covers every commit made before it began.
  Commits of leases and settlements are not synced (a lost one is an expired lease or a
  repeated delivery); a later sync of the same file covers their frames.
* every :data:`CHECKPOINT_EVERY` commits it runs a checkpoint itself, with the configured
  level's syncs, under the write lock (automatic checkpoints are off: one run with
  ``synchronous=OFF`` would copy pages into the database file unsynced and then let the
  WAL be overwritten — on power loss, accepted events could go). Under the lock no other
  writer appends meanwhile, so the checkpoint catches up and the WAL starts over.

``synchronous=NORMAL`` keeps its meaning (no sync per commit, syncs at checkpoints), and
``OFF`` syncs nothing at all.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT_EVERY", "SyncThread", "WalSync"]

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 100  # commits between two checkpoints (~5 pages each: ~500 WAL frames)


class WalSync:
    """The sync and checkpoint policy of one writer connection to ``path``."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._wal_path = f"{path}-wal"
        self._level = synchronous
        self._sync_commits = synchronous in ("FULL", "EXTRA")
        self._wal_fd: int | None = None
        self._commits = 0

    def prepare(self, conn: sqlite3.Connection) -> None:
        """Commit without syncs and without automatic checkpoints from now on."""
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA wal_autocheckpoint=0")

    def sync_commit(self) -> None:
        """Make every commit so far durable (after a durable one; the lock is released).

        Raises:
            OSError: the sync failed; nothing committed since the last sync is known to be
                on disk.
        """
        if not self._sync_commits:
            return
        if self._wal_fd is None:
            # The WAL file lives as long as a connection is open: this one's, at least.
            self._wal_fd = os.open(self._wal_path, os.O_RDONLY)
        os.fsync(self._wal_fd)

    def after_commit(self, conn: sqlite3.Connection) -> None:
        """Count a commit; checkpoint, with syncs, every :data:`CHECKPOINT_EVERY` (call it
        with the write lock held)."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            self._commits = 0
            try:
                self.checkpoint(conn)
            except sqlite3.Error as exc:  # the commit stands; the next one tries again
                logger.warning("checkpoint of %s failed: %s", self._wal_path, exc)

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL into the database file with the configured level's syncs."""
        conn.execute(f"PRAGMA synchronous={self._level}")
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.execute("PRAGMA synchronous=OFF")

    def close(self, conn: sqlite3.Connection) -> None:
        """Before the connection closes: closing checkpoints, so with syncs."""
        conn.execute(f"PRAGMA synchronous={self._level}")
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None


class SyncThread:
    """Syncs durable commits on a thread of its own, then hands them to ``deliver``.

    The writer thread :meth:`put`\\ s each durable commit's outcome right after the commit
    and goes on with the next transaction; this thread takes everything put so far, syncs
    once, and calls ``deliver(outcome, error)`` for each in order — ``error`` is ``None``, or
    the ``OSError`` of a failed sync (then none of them is known to be on disk).
    """

    def __init__(self, sync: WalSync, deliver: Callable[[Any, OSError | None], None]) -> None:
        self._sync = sync
        self._deliver = deliver
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = object()
        self._thread = threading.Thread(target=self._run, name="queue-sync", daemon=True)
        self._thread.start()

    def put(self, outcome: Any) -> None:
        """Deliver ``outcome`` once a sync that began after this call is done."""
        self._inbox.put(outcome)

    def stop(self) -> None:
        """Sync and deliver what was put, then end the thread (call from the writer)."""
        self._inbox.put(self._stop)
        self._thread.join()

    def _run(self) -> None:
        inbox, stop = self._inbox, self._stop
        while True:
            taken = [inbox.get()]
            while True:
                try:
                    taken.append(inbox.get_nowait())
                except queue.Empty:
                    break
            outcomes = [outcome for outcome in taken if outcome is not stop]
            error: OSError | None = None
            if outcomes:
                try:
                    self._sync.sync_commit()
                except OSError as exc:
                    error = exc
                for outcome in outcomes:
                    self._deliver(outcome, error)
            if len(outcomes) < len(taken):
                return
