"""On opening: a read-only connection to an untrusted SQLite file, hardened before any query.

Following sqlite.org's "Defense against the dark arts" (security.html): defensive mode,
``trusted_schema=OFF``, ``cell_size_check=ON``, tight ``setlimit`` values and a progress
handler as a deadline. The build's check uses it in its child process; ``builder.tables``,
``builder.scan`` and ``builder.compat`` read the canonical copy through it too.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

#: ``sqlite3.Connection.setlimit`` values for untrusted files (security.html, item 3): far below
#: SQLite's defaults where a real gallery never comes close, generous where data legitimately does.
SQLITE_LIMITS: dict[int, int] = {
    sqlite3.SQLITE_LIMIT_LENGTH: 64 * 1024 * 1024,  # one string or blob: 64 MiB
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 1_000_000,  # one statement of the schema: 1 MB of SQL
    sqlite3.SQLITE_LIMIT_COLUMN: 2000,  # SQLite's own maximum; our per-table cap is CheckLimits.max_columns
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 100,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 250_000,
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 100,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 1000,
    sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: 10,
    sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH: 10,
    sqlite3.SQLITE_LIMIT_WORKER_THREADS: 0,
}
#: SQLite virtual-machine instructions between two looks at the deadline.
PROGRESS_EVERY = 10_000


def harden(conn: sqlite3.Connection, deadline: float | None = None) -> None:
    """Apply the settings for untrusted files to ``conn`` (security.html), before any query.

    Defensive mode (no writes to the schema or shadow tables, even with ``writable_schema``),
    ``trusted_schema`` off (functions and virtual tables in the schema must be innocuous),
    ``cell_size_check`` on, the ``SQLITE_LIMITS`` values, and when ``deadline`` (a
    ``time.monotonic()`` value) is given, a progress handler that interrupts any statement
    running past it (the statement then fails with ``sqlite3.OperationalError("interrupted")``).
    """
    conn.setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)
    conn.setconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA, False)
    conn.setconfig(sqlite3.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, False)
    for limit, value in SQLITE_LIMITS.items():
        conn.setlimit(limit, value)
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute("PRAGMA cell_size_check = ON")
    if deadline is not None:
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_EVERY)


def open_untrusted(path: Path, deadline: float | None = None) -> sqlite3.Connection:
    """A read-only, immutable connection to the SQLite file at ``path``, hardened (``harden``).

    Text that is not valid UTF-8 is decoded with replacement characters. Raises ``sqlite3.Error``.
    """
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro&immutable=1", uri=True)
    conn.text_factory = lambda data: data.decode("utf-8", "replace")
    harden(conn, deadline)
    return conn
