"""The check's child process: every check that needs SQLite, then the canonical copy.

``check_database`` (``builder.sqlite_check``) starts ``python -m builder.sqlite_check``
(``__main__``, which calls ``main``) with a JSON request on stdin: ``{"path", "copy_to",
"limits"}``. ``main`` caps its own address space and CPU time (``resource.setrlimit``) before
any untrusted byte is read, runs ``inspect`` on a hardened, read-only connection and prints one
JSON answer: ``{"info": DatabaseInfo}`` or ``{"refused": message for the publisher}``.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

from builder.sqlite_check.hardened import SQLITE_LIMITS, harden, open_untrusted
from builder.sqlite_check.header import UPLOAD_INTACT, HeaderInfo, InvalidDatabase, check_file
from builder.sqlite_check.limits import CheckLimits, DatabaseInfo, TimedOut, memory_message, time_message
from builder.sqlite_check.schema import Schema, check_schema, objects

#: What the published copy says about a WAL-mode upload.
WAL_WARNING = (
    "This database was in WAL mode. Only what was in the main file was published: changes that were "
    "still in its -wal file (not checkpointed before upload) are missing. If something is missing, "
    "run `sqlite3 your.db 'PRAGMA wal_checkpoint(TRUNCATE)'` (or `PRAGMA journal_mode=DELETE`) with "
    "its -wal file beside it, then upload the .db file again."
)


def main() -> int:
    """Read a JSON request on stdin, check (and copy) the file it names, print one JSON answer on stdout."""
    import resource

    request = json.loads(sys.stdin.read())
    limits = CheckLimits(**request["limits"])
    deadline = time.monotonic() + limits.seconds
    cpu = max(1, math.ceil(limits.cpu_seconds or limits.seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    sqlite3.connect(":memory:").close()  # sqlite3's own set-up happens before any untrusted byte is read
    copy_to = Path(request["copy_to"]) if request["copy_to"] else None
    try:
        info = inspect(Path(request["path"]), copy_to, limits, deadline)
        answer: dict[str, object] = {"info": asdict(info)}
    except InvalidDatabase as exc:
        answer = {"refused": exc.args[0]}
    except TimedOut:
        answer = {"refused": time_message(limits.seconds)}
    except MemoryError:
        answer = {"refused": memory_message(limits.memory_bytes)}
    sys.stdout.write(json.dumps(answer))
    return 0


def inspect(path: Path, copy_to: Path | None, limits: CheckLimits, deadline: float) -> DatabaseInfo:
    """Every check that needs SQLite, then the copy (with ``copy_to``). Raises ``InvalidDatabase``,
    ``TimedOut`` past ``deadline`` (a ``time.monotonic()`` value) and ``MemoryError``."""
    header = check_file(path, limits.max_bytes)
    try:
        conn = open_untrusted(path, deadline)
    except sqlite3.Error as exc:
        raise InvalidDatabase(f"SQLite could not open the file ({exc}). {UPLOAD_INTACT}") from exc
    try:
        schema = _read_schema(conn)
        tables, views = _check_contents(conn, schema, limits)
        notes = check_schema(conn, schema, limits, lambda: open_untrusted(path, deadline))
        if copy_to is not None:
            _copy(conn, copy_to, deadline)
    except sqlite3.Error as exc:
        if str(exc) == "interrupted":
            raise TimedOut from exc
        if "out of memory" in str(exc):
            raise MemoryError(str(exc)) from exc
        raise InvalidDatabase(
            f"SQLite could not read the file, so it is damaged or not a database SQLite can open ({exc}). "
            + UPLOAD_INTACT
        ) from exc
    finally:
        conn.close()
    return _info(path, header, tables, views, notes)


def _read_schema(conn: sqlite3.Connection) -> Schema:
    """``sqlite_master``'s rows; a schema SQLite cannot read (or too wide a table) is refused."""
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    except sqlite3.Error as exc:
        if str(exc) == "interrupted":
            raise TimedOut from exc
        if match := re.search(r"too many columns on (.+)$", str(exc)):
            raise InvalidDatabase(
                f"Table `{match.group(1)}` has more than {SQLITE_LIMITS[sqlite3.SQLITE_LIMIT_COLUMN]:,} columns. "
                "Split it into narrower tables, then upload again."
            ) from exc
        raise InvalidDatabase(
            f"SQLite could not read the database's schema ({exc}). Open the file in the sqlite3 shell or "
            f"DB Browser for SQLite, fix or drop what it names, then upload again. {UPLOAD_INTACT}"
        ) from exc


def _check_contents(conn: sqlite3.Connection, schema: Schema, limits: CheckLimits) -> tuple[list[str], list[str]]:
    """Refuse too many tables, too big a schema, a damaged file or an empty one; return ``(tables, views)`` sorted."""
    tables = sorted(name for name, _, _ in objects(schema, "table"))
    views = sorted(name for name, _, _ in objects(schema, "view"))
    if len(tables) + len(views) > limits.max_tables:
        raise InvalidDatabase(
            f"The database has {len(tables):,} tables (and {len(views):,} views); Glasshouse accepts at most "
            f"{limits.max_tables:,} tables and views together. Drop the ones you do not need (or merge tables of the same "
            "shape into one), then upload again."
        )
    schema_bytes = sum(len((sql or "").encode()) for *_, sql in schema)
    if schema_bytes > limits.max_schema_bytes:
        raise InvalidDatabase(
            f"The database's schema (its CREATE statements) is {schema_bytes:,} bytes; Glasshouse accepts at "
            f"most {limits.max_schema_bytes:,}. Drop tables, views, triggers or indexes you do not need, then "
            "upload again."
        )
    result = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if result != ["ok"]:
        raise InvalidDatabase(
            "SQLite reports the database is damaged: "
            + "; ".join(" ".join(str(line).split()) for line in result[:5])
            + ". Run `sqlite3 your.db .recover` or export a fresh copy, then upload again."
        )
    if not tables and not views:
        raise InvalidDatabase("The database has no tables or views, so there is nothing to publish.")
    return tables, views


def _info(path: Path, header: HeaderInfo, tables: list[str], views: list[str], notes: list[str]) -> DatabaseInfo:
    """What the check found; a WAL-mode upload's warning comes first."""
    return DatabaseInfo(
        tables=tuple(tables),
        views=tuple(views),
        size_bytes=path.stat().st_size,
        journal_mode="wal" if header.wal else "rollback",
        warnings=(WAL_WARNING, *notes) if header.wal else tuple(notes),
    )


def _copy(conn: sqlite3.Connection, target: Path, deadline: float) -> None:
    """Write the canonical copy of ``conn``'s database to ``target`` (``VACUUM INTO``), rollback-journal mode.

    ``VACUUM INTO`` rebuilds the file from its records (no free pages, no WAL state) and attaches
    the target itself, so the attachment limit is raised to 1 for this statement only.
    """
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 1)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    copy = sqlite3.connect(target)
    try:
        harden(copy, deadline)
        copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        copy.close()
