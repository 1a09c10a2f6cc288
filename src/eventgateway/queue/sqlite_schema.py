"""The SQLite queue's schema, its migrations, and opening a connection to it.

Tables:

``events``
    One row per accepted event: the body as :func:`~eventgateway.events.codec.encode_event`
    wrote it, and the columns the log lists and de-duplication looks up. ``space`` is the
    de-duplication scope (the deliveries' space; ``""`` for gateway events that fan out to
    several spaces).
``deliveries``
    One row per (event, subscription) at accept, and one more per replay to it
    (``replay_of``: set on replayed rows only). ``accepted_at`` is when a replay made
    the row or a redrive last revived it (a retry policy's max age counts from then;
    NULL: from the event's receipt). ``state`` is ``pending`` until settled as
    ``delivered`` or ``dead``. A pending row is leasable when ``due_at <= now``; leasing
    moves ``due_at`` (and ``lease_until``) to the lease's expiry, so an expired lease is
    simply due again. ``due_at IS NULL`` on a pending row means *parked*: an older
    unsettled delivery of the same (space, subscription, partition key) goes first, and
    settling that one un-parks the next.
``attempts``
    Every settled attempt of every delivery, numbered per delivery by
    ``deliveries.logged`` (which, unlike ``deliveries.attempts``, redrive does not reset).
``counters``
    One row: unsettled deliveries, bytes of events with unsettled deliveries, and dead
    letters, updated in the same transactions that change them, so every process sharing
    the file sees the bounds' true state after its own next commit.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from pathlib import Path
from typing import Final

from eventgateway.errors import ConfigError, StoreError

__all__ = [
    "SCHEMA_VERSION",
    "SYNCHRONOUS_MODES",
    "WAL_SIZE_LIMIT_BYTES",
    "check_synchronous",
    "connect",
    "migrate",
    "recount",
    "values",
]

logger = logging.getLogger(__name__)

SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
WAL_SIZE_LIMIT_BYTES: Final = 16 * 1024 * 1024

# _MIGRATIONS[n] takes a database from user_version n to n + 1.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # AUTOINCREMENT on both: ids are shown to operators (dead letters, paging) and a
        # stale lease holder may still settle by id, so an id is never used twice.
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            space TEXT NOT NULL,
            event_id TEXT NOT NULL,
            source TEXT NOT NULL,
            type TEXT NOT NULL,
            specversion TEXT NOT NULL,
            body BLOB NOT NULL,
            received_at REAL NOT NULL,
            size INTEGER NOT NULL
        )""",
        # De-duplication (all four columns, so the check never reads the row) and
        # get_event by id (its prefix).
        "CREATE INDEX events_by_id ON events (event_id, source, space, received_at)",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_seq INTEGER NOT NULL,
            space TEXT NOT NULL,
            subscription_id TEXT NOT NULL,
            function_id TEXT NOT NULL,
            partition_key TEXT,
            auth_request BLOB,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            logged INTEGER NOT NULL DEFAULT 0,
            due_at REAL,
            lease_until REAL,
            last_status INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            response_excerpt TEXT NOT NULL DEFAULT '',
            dead_reason TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL
        )""",
        # Leasing scans this in (due_at, id) order. subscription_id and state are in it
        # so that the scan never reads the table: SQLite 3.40 does not count the partial
        # index's own WHERE as covered, and the exclude filter needs subscription_id.
        # Parked rows are left out.
        """CREATE INDEX deliveries_due ON deliveries (due_at, id, subscription_id, state)
            WHERE state = 'pending' AND due_at IS NOT NULL""",
        # Ordering: the unsettled deliveries of one partition key, oldest first.
        """CREATE INDEX deliveries_key ON deliveries (space, subscription_id, partition_key, id)
            WHERE state = 'pending' AND partition_key IS NOT NULL""",
        # An event's deliveries (settle, retention) and a space's events (the listing).
        "CREATE INDEX deliveries_event ON deliveries (event_seq)",
        "CREATE INDEX deliveries_space ON deliveries (space, event_seq)",
        "CREATE INDEX deliveries_dead ON deliveries (space, updated_at) WHERE state = 'dead'",
        """CREATE TABLE attempts (
            delivery_id INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            started_at REAL NOT NULL,
            duration_ms REAL NOT NULL,
            outcome TEXT NOT NULL,
            status INTEGER,
            error TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (delivery_id, attempt)
        ) WITHOUT ROWID""",
        """CREATE TABLE counters (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            backlog INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        )""",
        "INSERT INTO counters (id, backlog, bytes) VALUES (1, 0, 0)",
    ),
    (
        # A lease that excludes busy subscriptions walks subscription by subscription
        # through this instead of scanning past the busy ones' whole backlog.
        """CREATE INDEX deliveries_sub_due ON deliveries (subscription_id, due_at, id)
            WHERE state = 'pending' AND due_at IS NOT NULL""",
    ),
    (
        # Dead letters are kept until redriven or purged, up to a bound (as JetStream's
        # dead-letter stream): a count here, so dead-lettering never counts the index.
        "ALTER TABLE counters ADD COLUMN dead INTEGER NOT NULL DEFAULT 0",
        "UPDATE counters SET dead = (SELECT COUNT(*) FROM deliveries WHERE state = 'dead')",
    ),
    (
        # Replay (sqlite_replay.py) adds deliveries to a stored event: which delivery each
        # repeats, and when it was made (a retry policy's max age counts from then, not
        # from the event's receipt). Both NULL on deliveries made at accept.
        "ALTER TABLE deliveries ADD COLUMN replay_of INTEGER",
        "ALTER TABLE deliveries ADD COLUMN accepted_at REAL",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


def connect(
    path: Path, synchronous: str, *, busy_timeout_s: float = 10.0, readonly: bool = False
) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with explicit transactions (``isolation_level=None``).

    Raises:
        StoreError: the file cannot be opened or is not a SQLite database.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the SQLite queue {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # Another process (ingest beside a dispatcher) may hold the write lock briefly.
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        # 4 MiB: the hot pages (the index heads leases and inserts touch, the newest
        # events) fit; older pages come back from the OS page cache. A larger cache only
        # fills up with a backlog's cold pages, and shows as memory that grows with it.
        conn.execute("PRAGMA cache_size=-4096")
        # A burst grows the WAL; once checkpointed and reset it is cut back to this, so
        # a full disk freed of other files is not taken again by the WAL (QA).
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        if readonly:
            conn.execute("PRAGMA query_only=1")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the SQLite queue {path}: {exc}") from exc
    return conn


def check_synchronous(value: str) -> str:
    """Validate a ``synchronous`` setting.

    Raises:
        ConfigError: it is not one of :data:`SYNCHRONOUS_MODES`.
    """
    mode = value.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ConfigError(
            f"synchronous={value!r} is not a SQLite synchronous mode; "
            f"use one of {', '.join(SYNCHRONOUS_MODES)} (FULL survives power loss)"
        )
    return mode


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`.

    Raises:
        StoreError: the file's schema is newer than this code, or a step failed.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has queue schema version {version}, newer than this "
                    f"eventgateway understands ({SCHEMA_VERSION}); upgrade eventgateway"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
                logger.info("Migrated %s to queue schema version %d", path, step + 1)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"cannot prepare the SQLite queue {path}: {exc}") from exc


def recount(conn: sqlite3.Connection) -> tuple[int, int]:
    """Recompute the ``counters`` row from the tables (at open) and return it.

    The row is kept exact transaction by transaction; recounting at open makes a file
    edited by hand, or by an older build, right again.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        (backlog,) = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"
        ).fetchone()
        (stored,) = conn.execute(
            """SELECT COALESCE(SUM(size), 0) FROM events WHERE seq IN
                (SELECT event_seq FROM deliveries WHERE state = 'pending')"""
        ).fetchone()
        (dead,) = conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'").fetchone()
        conn.execute(
            "UPDATE counters SET backlog = ?, bytes = ?, dead = ? WHERE id = 1",
            (backlog, stored, dead),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(backlog), int(stored)


@functools.lru_cache(maxsize=256)
def values(rows: int, width: int) -> str:
    """``(?, ?), (?, ?)``: the VALUES list of a multi-row statement."""
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * rows)
