"""The function log file's schema, and opening a connection to it.

One table, ``logs``: one row per line. ``seq`` (the rowid) orders lines with equal
timestamps in the order they were appended; the writer sets it itself (the line's position
plus the file's base, ``logs_writer.py``), so that live tails know where each line is
stored. ``PRAGMA user_version`` is the schema version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from eventgateway.errors import StoreError

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "Inserter",
    "connect",
    "insert_statement",
    "rows_per_statement",
    "store_error",
]

SCHEMA_VERSION: Final = 1
_SCHEMA: Final = (
    """CREATE TABLE logs (
        seq INTEGER PRIMARY KEY,
        space TEXT NOT NULL,
        function_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        ts REAL NOT NULL,
        stream TEXT NOT NULL,
        message TEXT NOT NULL
    )""",
    # The only index (each one slows every insert): queries, since-ranges, retention.
    # The rowid is its implicit last column, so "ORDER BY ts DESC, seq DESC" reads it.
    "CREATE INDEX logs_by_function ON logs (space, function_id, ts)",
)

COLUMNS: Final = 7
# Rows per INSERT statement. The sqlite3 module releases the GIL around every statement,
# and taking it back waits up to sys.getswitchinterval() while the event loop is busy —
# exactly when a handler prints in a tight loop. Measured on 200,000 lines with a busy
# second thread: executemany (one step per row) 1,400 rows/s; 100 rows per statement
# 18,000/s; 2,000 rows 120,000/s; idle, 140,000/s vs 300,000/s.
_ROWS_PER_STATEMENT: Final = 2000


def store_error(path: Path, action: str, exc: BaseException) -> StoreError:
    """A :class:`StoreError` for a failed ``action`` on ``path``, chained to ``exc``."""
    error = StoreError(f"the function log store {path} failed to {action}: {exc}")
    error.__cause__ = exc
    return error


def insert_statement(rows: int) -> str:
    """An INSERT of ``rows`` rows of :data:`COLUMNS` parameters each."""
    values = ",".join(["(?,?,?,?,?,?,?)"] * rows)
    columns = "seq, space, function_id, request_id, ts, stream, message"
    return f"INSERT INTO logs ({columns}) VALUES {values}"


class Inserter:
    """Inserts rows of :data:`COLUMNS` values, in statements of as many rows as the build
    allows (:func:`rows_per_statement`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._step = rows_per_statement(conn) * COLUMNS
        self._full = insert_statement(self._step // COLUMNS)

    def insert(self, conn: sqlite3.Connection, params: Sequence[object]) -> None:
        """Insert the rows whose values follow one another in ``params``.

        Raises:
            sqlite3.Error: from the statements.
        """
        step = self._step
        for start in range(0, len(params), step):
            chunk = params[start : start + step]
            full = len(chunk) == step
            conn.execute(self._full if full else insert_statement(len(chunk) // COLUMNS), chunk)


def rows_per_statement(conn: sqlite3.Connection) -> int:
    """Rows per INSERT: 2,000, or fewer where the SQLite build allows fewer parameters."""
    # Builds of SQLite before 3.32 allow 999 parameters per statement, not 32,766.
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(_ROWS_PER_STATEMENT, limit // COLUMNS))


def connect(path: Path, synchronous: str, *, busy_timeout_s: float) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with explicit transactions, creating the schema if new.

    Raises:
        StoreError: the file cannot be opened, is not SQLite, or has a newer schema.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store_error(path, "create its directory", exc) from exc
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(path, "open", exc) from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version == 0:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"the function log store {path} has schema version {version}; this "
                f"eventgateway reads version {SCHEMA_VERSION}: upgrade it, or move the "
                "file away to start with empty logs"
            )
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(path, "open", exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn
