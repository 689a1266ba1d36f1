"""Validate an uploaded file as a SQLite database, without trusting it.

Two stages, following sqlite.org's "Defense against the dark arts" (security.html):

``check_header`` / ``check_file``
    Pure Python, no SQLite: the 100-byte header (fileformat.html, 1.3) and the file's size.
    Cheap, so the web request runs it too.
``check_database``
    Opens the file with SQLite in a child process (``python -m builder.sqlite_check``) whose
    address space and CPU time are capped (``resource.setrlimit``) and which the parent kills
    at a wall-clock deadline. The connection is read-only and immutable, hardened by
    ``harden`` (defensive mode, ``trusted_schema=OFF``, ``cell_size_check=ON``, tight
    ``setlimit`` values, a progress handler as a deadline). It runs ``PRAGMA quick_check``,
    caps tables, columns and schema size, allows only known virtual-table modules, compiles
    every table, view and trigger (a function that needs an extension or does not exist
    fails to compile; ``load_extension`` is refused by name) and, with ``copy_to``, writes the
    canonical copy (``VACUUM INTO``, rollback-journal mode) in the same child with the same
    settings, so the raw upload itself is never published.

Every refusal is an ``InvalidDatabase`` whose message names the object and says what to change.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

#: The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html, 1.3).
SQLITE_HEADER = b"SQLite format 3\x00"
#: Length of the database header in bytes.
HEADER_BYTES = 100
#: Virtual-table modules a gallery may use: the ones built into SQLite and Pyodide's SQLite.
ALLOWED_MODULES = frozenset({"fts3", "fts4", "fts5", "rtree", "rtree_i32"})
#: Functions refused by name wherever the schema calls them, whatever SQLite would say.
REFUSED_FUNCTIONS = frozenset({"load_extension"})

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
#: Seconds the parent waits beyond the child's own deadline before it kills the child.
KILL_GRACE_SECONDS = 5.0

#: What a refusal asks the publisher to do when the file itself is broken.
_UPLOAD_INTACT = (
    "Upload the complete, intact file: check that the copy or download finished, or export a fresh copy "
    "(`sqlite3 your.db .recover` can rescue a damaged one)."
)
#: File signatures of things people upload by mistake, for a kinder "this is not SQLite".
_LOOKS_LIKE = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (also what .xlsx, .docx and .ods files are)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


class InvalidDatabase(ValueError):
    """The file is not a usable SQLite database. ``args[0]`` says why and what to do, for the publisher.

    ``detail`` holds text for the build log only (a child's error output), or ``""``.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class HeaderInfo:
    """What the 100-byte header says: page size in bytes, number of pages, and whether it is WAL mode."""

    page_size: int
    page_count: int
    wal: bool


@dataclass(frozen=True)
class CheckLimits:
    """Limits of one ``check_database`` run.

    ``max_bytes``: file size cap in bytes (``None``: no cap); ``seconds``: wall-clock time
    for the whole check and copy; ``cpu_seconds``: the child's CPU time (``RLIMIT_CPU``; ``None``:
    as many as ``seconds``), which also stops work SQLite does outside the progress handler's
    reach, such as parsing a huge schema;
    ``memory_bytes``: the child's address space (``RLIMIT_AS``); ``max_tables``: tables and
    views together (full-text and R*Tree shadow tables count too); ``max_columns``: columns of
    one table; ``max_schema_bytes``: the schema's SQL text, all statements together.
    """

    max_bytes: int | None = None
    seconds: float = 300.0
    cpu_seconds: float | None = None
    memory_bytes: int = 512 * 1024 * 1024
    max_tables: int = 1000
    max_columns: int = 1000
    max_schema_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class DatabaseInfo:
    """What a valid database holds: table and view names, its size in bytes and journal mode.

    ``journal_mode`` is ``"wal"`` or ``"rollback"`` (header bytes 18 and 19); ``warnings`` are
    sentences for the build log and build page (e.g. that a WAL file's un-checkpointed changes
    are missing).
    """

    tables: tuple[str, ...]
    views: tuple[str, ...]
    size_bytes: int
    journal_mode: str = "rollback"
    warnings: tuple[str, ...] = field(default=())


# --- Before opening: the header, in pure Python -----------------------------------------------


def format_megabytes(size_bytes: int) -> str:
    """Return ``size_bytes`` in MB (1 MB = 1024 * 1024 bytes), e.g. ``"100 MB"`` or ``"1.5 MB"``."""
    megabytes = size_bytes / (1024 * 1024)
    return f"{megabytes:.0f} MB" if megabytes == int(megabytes) else f"{megabytes:.1f} MB"


def _not_sqlite(head: bytes) -> InvalidDatabase:
    stripped = head.lstrip().lower()
    kind = next((label for magic, label in _LOOKS_LIKE if head.startswith(magic)), None)
    if kind is None and stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<")):
        kind = "an HTML or XML page"
    found = f"it looks like {kind}, " if kind else "its first bytes are not the SQLite header, "
    return InvalidDatabase(
        f"This is not a SQLite database: {found}whatever its name says. "
        "Export your data as SQLite (for example with sqlite-utils or the sqlite3 shell) and upload that file."
    )


def check_header(fileobj: BinaryIO, *, size_bytes: int | None = None, max_bytes: int | None = None) -> HeaderInfo:
    """Check the SQLite header of ``fileobj`` (an open binary file) and its size; return ``HeaderInfo``.

    Reads the first 100 bytes from the current position and seeks back to it. ``size_bytes``
    is the file's size (default: measured by seeking to the end); ``max_bytes`` the size cap
    (``None``: none). Raises ``InvalidDatabase`` if the file is empty or over the cap, if it
    does not start with ``SQLite format 3\\0``, if the page size (bytes 16-17, 1 meaning 65536)
    is not a power of two from 512 to 65536, if the write and read versions (bytes 18 and 19)
    are not both 1 (rollback journal) or both 2 (WAL), or if the size is not page size ×
    page count (bytes 28-31, trusted only when the change counter at 24 equals the
    version-valid-for number at 92; otherwise the size must be a whole number of pages).
    """
    start = fileobj.tell()
    if size_bytes is None:
        size_bytes = fileobj.seek(0, os.SEEK_END) - start
    fileobj.seek(start)
    head = fileobj.read(HEADER_BYTES)
    fileobj.seek(start)
    if not head or size_bytes == 0:
        raise InvalidDatabase(
            "The file is empty. Choose your SQLite database file (.db, .sqlite, .sqlite3) and upload it again."
        )
    if max_bytes is not None and size_bytes > max_bytes:
        raise InvalidDatabase(
            f"The file is {format_megabytes(size_bytes)}, larger than the {format_megabytes(max_bytes)} limit. "
            "Remove tables or rows you do not need (then VACUUM) and upload it again."
        )
    if not head.startswith(SQLITE_HEADER):
        raise _not_sqlite(head)
    if len(head) < HEADER_BYTES or size_bytes < HEADER_BYTES:
        raise InvalidDatabase(f"The file is cut short: it ends inside the 100-byte SQLite header. {_UPLOAD_INTACT}")
    raw_page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    if not (512 <= page_size <= 65536 and page_size & (page_size - 1) == 0):
        raise InvalidDatabase(
            f"The header's page size ({raw_page_size}) is not a power of two between 512 and 65536, "
            f"so the file is damaged. {_UPLOAD_INTACT}"
        )
    write_version, read_version = head[18], head[19]
    if (write_version, read_version) not in ((1, 1), (2, 2)):
        raise InvalidDatabase(
            f"The header's file-format bytes (write version {write_version}, read version {read_version}) "
            "must both be 1 (rollback journal) or both be 2 (WAL), so the file is damaged or was made by a "
            f"program that does not write standard SQLite. {_UPLOAD_INTACT}"
        )
    change_counter, valid_for = head[24:28], head[92:96]
    header_pages = int.from_bytes(head[28:32], "big")
    if header_pages and change_counter == valid_for:
        expected = page_size * header_pages
        if size_bytes != expected:
            how = "cut short" if size_bytes < expected else "longer than its header says"
            raise InvalidDatabase(
                f"The file is {how}: its header says {header_pages:,} pages of {page_size:,} bytes "
                f"({expected:,} bytes), but the file has {size_bytes:,} bytes. {_UPLOAD_INTACT}"
            )
        page_count = header_pages
    else:
        # Written by a SQLite older than 3.7.0 (or the header's count is stale): the size decides.
        if size_bytes % page_size:
            raise InvalidDatabase(
                f"The file is cut short or damaged: its {size_bytes:,} bytes are not a whole number of "
                f"{page_size:,}-byte pages. {_UPLOAD_INTACT}"
            )
        page_count = size_bytes // page_size
    return HeaderInfo(page_size=page_size, page_count=page_count, wal=write_version == 2)


def check_file(path: Path, max_bytes: int | None = None) -> HeaderInfo:
    """``check_header`` on the file at ``path``, with its size from the file system."""
    with Path(path).open("rb") as fh:
        return check_header(fh, size_bytes=os.fstat(fh.fileno()).st_size, max_bytes=max_bytes)


# --- On opening: a hardened connection --------------------------------------------------------


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


# --- Inside the child: what SQLite says about the schema -----------------------------------------

_KINDS = {"table": "Table", "view": "View", "trigger": "Trigger", "index": "Index"}
#: SQLite's errors for a function it does not have or may not call here; group 1 is the function's name.
_FUNCTION_ERROR = re.compile(r"(?:no such function: |unknown function: |unsafe use of )([^\s(]+)(?:\(\))?$")
_MODULE_DECLARATION = re.compile(
    r"""^\s*CREATE\s+VIRTUAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?
        (?:(?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s(."'`\[]+)\s*\.\s*)?
        (?:"(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s("'`\[]+)
        \s+USING\s+([^\s(]+)""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
#: A quoted string or identifier (group 1, kept) or a comment (replaced by a space), for ``_without_comments``.
_COMMENT_OR_QUOTED = re.compile(
    r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])|/\*.*?(?:\*/|\Z)|--[^\n]*""", re.DOTALL
)
#: A call of load_extension, its name perhaps quoted (SQLite accepts "load_extension"(...) too).
_CALLS_LOAD_EXTENSION = re.compile(r"\bload_extension\b[\"`\]]?\s*\(", re.IGNORECASE)
_TOO_COMPLEX = (
    "too many",
    "too large",
    "too big",
    "too long",
    "too complex",
    "too deep",
    "expression tree",
    "pattern too complex",
)


class _TimedOut(Exception):
    pass


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _time_message(seconds: float) -> str:
    return (
        f"Checking the database took longer than the {seconds:g}-second limit, so it was stopped. "
        "Make the file smaller (remove tables, rows or indexes you do not need, then VACUUM) and upload it "
        "again; if it is well within the upload limit, tell us: the limit may be set too low."
    )


def _memory_message(memory_bytes: int) -> str:
    return (
        f"Checking the database needed more than the {format_megabytes(memory_bytes)} of memory it may use, so it was "
        "stopped. Make the file or its schema smaller (fewer tables, columns, views or indexes) and upload it "
        "again; if it is well within the upload limit, tell us: the limit may be set too low."
    )


def _refusal(kind: str, name: str, exc: sqlite3.Error, column: str | None = None) -> InvalidDatabase:
    """A message for ``exc``, raised while compiling ``kind`` (table/view/trigger) ``name``."""
    reason = str(exc)
    if reason == "interrupted":
        raise _TimedOut from exc
    if "out of memory" in reason:
        raise MemoryError(reason) from exc
    what = f"Column `{column}` of table `{name}`" if column else f"{_KINDS.get(kind, kind.title())} `{name}`"
    drop = f"Drop the {'column' if column else kind}"
    if match := _FUNCTION_ERROR.search(reason):
        function = match.group(1).rstrip("()")
        if function.lower() in REFUSED_FUNCTIONS:
            return _load_extension_refusal(what, kind, column)
        if reason.startswith("unsafe use of"):
            return InvalidDatabase(
                f"{what} calls {function}(), which may not run inside a database's schema "
                f"(SQLite's trusted_schema is off in Glasshouse). {drop} or rewrite it without {function}(), "
                "then upload again."
            )
        return InvalidDatabase(
            f"{what} calls {function}(), a function SQLite does not have: it comes from an extension or from "
            f"the program that made the file. {drop} or rewrite it without {function}(), then upload again."
        )
    if reason.startswith("no such module: "):
        return _module_refusal(name, reason.removeprefix("no such module: "))
    if any(words in reason.lower() for words in _TOO_COMPLEX):
        return InvalidDatabase(
            f"{what} is too complex for Glasshouse to accept (SQLite says: {reason}). "
            f"Simplify it or {drop.lower()}, then upload again."
        )
    return InvalidDatabase(
        f"{what} could not be compiled (SQLite says: {reason}). Fix it or {drop.lower()}, then upload again."
    )


def _load_extension_refusal(what: str, kind: str, column: str | None) -> InvalidDatabase:
    noun = "column" if column else kind
    return InvalidDatabase(
        f"{what} calls load_extension(), which Glasshouse does not allow. "
        f"Drop the {noun} or rewrite it without extensions, then upload again."
    )


def _module_refusal(table: str, module: str) -> InvalidDatabase:
    allowed = ", ".join(sorted(ALLOWED_MODULES - {"rtree_i32"}))
    return InvalidDatabase(
        f"Table `{table}` is a virtual table of the module `{module}`, which Glasshouse does not support: "
        f"galleries may use only {allowed}, which every reader's browser has (others need a SQLite extension "
        "or expose the file's internals). Drop the table, or copy its rows into an ordinary table, then upload again."
    )


@dataclass
class _Source:
    """The innermost view or trigger SQLite was compiling, as its authorizer last reported it."""

    name: str | None = None

    def authorizer(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        if source:
            self.name = source
        if action == sqlite3.SQLITE_FUNCTION and arg2 and arg2.lower() in REFUSED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def _compile(conn: sqlite3.Connection, sql: str, source: _Source) -> sqlite3.Error | None:
    """Prepare ``sql`` without running it (``EXPLAIN``); return SQLite's error or ``None``."""
    source.name = None
    try:
        conn.execute("EXPLAIN " + sql).fetchall()
    except sqlite3.Error as exc:
        return exc
    return None


def _objects(
    schema: list[tuple[str, str, str, str | None]], kind: str, *, internal: bool = False
) -> Iterator[tuple[str, str, str | None]]:
    """``(name, tbl_name, sql)`` of the schema's objects of ``kind``; SQLite's own (``sqlite_*``) only if ``internal``."""
    for type_, name, tbl_name, sql in schema:
        if type_ == kind and (internal or not name.startswith("sqlite_")):
            yield name, tbl_name, sql


def _inspect(path: Path, copy_to: Path | None, limits: CheckLimits, deadline: float) -> DatabaseInfo:
    """Every check that needs SQLite, then the copy; runs in the child. Raises ``InvalidDatabase``."""
    header = check_file(path, limits.max_bytes)
    try:
        conn = open_untrusted(path, deadline)
    except sqlite3.Error as exc:
        raise InvalidDatabase(f"SQLite could not open the file ({exc}). {_UPLOAD_INTACT}") from exc
    source = _Source()
    try:
        try:
            schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        except sqlite3.Error as exc:
            if str(exc) == "interrupted":
                raise _TimedOut from exc
            if match := re.search(r"too many columns on (.+)$", str(exc)):
                raise InvalidDatabase(
                    f"Table `{match.group(1)}` has more than {SQLITE_LIMITS[sqlite3.SQLITE_LIMIT_COLUMN]:,} columns. "
                    "Split it into narrower tables, then upload again."
                ) from exc
            raise InvalidDatabase(
                f"SQLite could not read the database's schema ({exc}). Open the file in the sqlite3 shell or "
                f"DB Browser for SQLite, fix or drop what it names, then upload again. {_UPLOAD_INTACT}"
            ) from exc
        tables = sorted(name for name, _, _ in _objects(schema, "table"))
        views = sorted(name for name, _, _ in _objects(schema, "view"))
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
        notes = _check_schema(conn, schema, limits, source, lambda: open_untrusted(path, deadline))
        if copy_to is not None:
            _copy(conn, copy_to, deadline)
    except sqlite3.Error as exc:
        if str(exc) == "interrupted":
            raise _TimedOut from exc
        if "out of memory" in str(exc):
            raise MemoryError(str(exc)) from exc
        raise InvalidDatabase(
            f"SQLite could not read the file, so it is damaged or not a database SQLite can open ({exc}). "
            + _UPLOAD_INTACT
        ) from exc
    finally:
        conn.close()
    warnings = tuple(notes)
    if header.wal:
        warnings = (
            (
                "This database was in WAL mode. Only what was in the main file was published: changes that were "
                "still in its -wal file (not checkpointed before upload) are missing. If something is missing, "
                "run `sqlite3 your.db 'PRAGMA wal_checkpoint(TRUNCATE)'` (or `PRAGMA journal_mode=DELETE`) with "
                "its -wal file beside it, then upload the .db file again."
            ),
            *warnings,
        )
    return DatabaseInfo(
        tables=tuple(tables),
        views=tuple(views),
        size_bytes=path.stat().st_size,
        journal_mode="wal" if header.wal else "rollback",
        warnings=warnings,
    )


def _check_schema(
    conn: sqlite3.Connection,
    schema: list[tuple[str, str, str, str | None]],
    limits: CheckLimits,
    source: _Source,
    reopen: Callable[[], sqlite3.Connection],
) -> list[str]:
    """Refuse unknown modules, refused functions, wide tables and anything that does not compile.

    Returns warnings for the publisher: views that only compile with ``trusted_schema`` on
    (a view over a full-text table, for instance), which the gallery's Datasette may refuse.
    ``reopen`` opens a second hardened connection to the same file, for that second try.
    """
    # Refused by name first: the message must say load_extension even where SQLite would say "unsafe use".
    for type_, name, tbl_name, sql in schema:
        if sql and _CALLS_LOAD_EXTENSION.search(_without_comments(sql)):
            raise _load_extension_refusal(f"{_KINDS.get(type_, type_.title())} `{name}`", type_, None)
    # A virtual table is a table without a root page (SQLite refuses any other); comments must not
    # hide its module from the allowlist.
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND rootpage = 0"):
        sql = next((sql for type_, other, _, sql in schema if type_ == "table" and other == name), None) or ""
        match = _MODULE_DECLARATION.match(_without_comments(sql))
        module = match.group(1).strip("\"'`[]") if match else "(unreadable)"
        if module.lower() not in ALLOWED_MODULES:
            raise _module_refusal(name, module)
    conn.set_authorizer(source.authorizer)
    kinds = {name: type_ for type_, name, _, _ in schema}
    for name, _, _ in _objects(schema, "table", internal=True):
        error = _compile(conn, f"SELECT * FROM {_quote(name)} LIMIT 0", source)
        if error is not None:
            raise _column_refusal(conn, name, error, source)
        columns = conn.execute(f"PRAGMA table_xinfo({_quote(name)})").fetchall()
        if len(columns) > limits.max_columns:
            raise InvalidDatabase(
                f"Table `{name}` has {len(columns):,} columns; Glasshouse accepts at most {limits.max_columns:,} "
                "per table. Split it into narrower tables, then upload again."
            )
    notes: list[str] = []
    trusting: sqlite3.Connection | None = None

    def compile_trusting(sql: str, error: sqlite3.Error) -> sqlite3.Error | None:
        """SQLite refuses a virtual table (of an allowed module) in a view or trigger while
        trusted_schema is off; compile it again with trusted_schema on, still refusing load_extension."""
        nonlocal trusting
        if not str(error).startswith("unsafe use of virtual table"):
            return error
        if trusting is None:
            trusting = reopen()
            trusting.setconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA, True)
            trusting.execute("PRAGMA trusted_schema = ON")
            trusting.set_authorizer(source.authorizer)
        return _compile(trusting, sql, source)

    try:
        for name, _, _ in _objects(schema, "view", internal=True):
            sql = f"SELECT * FROM {_quote(name)} LIMIT 0"
            if (error := _compile(conn, sql, source)) is not None:
                if (still := compile_trusting(sql, error)) is None:
                    notes.append(
                        f"View `{name}` reads a virtual table, which SQLite refuses inside views while its "
                        "trusted_schema setting is off, as it is in the gallery: there the view may show an error "
                        "instead of rows. The rest of the gallery is not affected."
                    )
                    continue
                culprit = source.name if source.name in kinds else name
                raise _refusal(kinds.get(culprit, "view"), culprit, still)
        # A trigger compiles only inside a statement that fires it: prepare one of each kind.
        # (Galleries are read-only, so no trigger ever runs there: trusted_schema does not matter.)
        for target in sorted({tbl_name for _, tbl_name, _ in _objects(schema, "trigger", internal=True)}):
            settable = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({_quote(target)})") if row[6] in (0, 1)]
            assignments = ", ".join(f"{_quote(column)} = {_quote(column)}" for column in settable) or "rowid = rowid"
            for statement in (
                f"INSERT INTO {_quote(target)} DEFAULT VALUES",
                f"UPDATE {_quote(target)} SET {assignments}",
                f"DELETE FROM {_quote(target)}",
            ):
                if (error := _compile(conn, statement, source)) is not None:
                    if (error := compile_trusting(statement, error)) is None:
                        continue
                    culprit = (
                        source.name if kinds.get(source.name or "") == "trigger" else _trigger_of(schema, target, error)
                    )
                    raise _refusal("trigger", culprit, error)
    finally:
        if trusting is not None:
            trusting.close()
    conn.set_authorizer(None)
    return notes


def _without_comments(sql: str) -> str:
    """``sql`` with every comment replaced by a space (quoted strings and identifiers kept as they are)."""
    return _COMMENT_OR_QUOTED.sub(lambda match: match.group(1) or " ", sql)


def _trigger_of(schema: list[tuple[str, str, str, str | None]], target: str, error: sqlite3.Error) -> str:
    """The trigger on ``target`` whose SQL names the function in ``error``, else the first one."""
    triggers = [(name, sql or "") for name, tbl_name, sql in _objects(schema, "trigger") if tbl_name == target]
    if match := _FUNCTION_ERROR.search(str(error)):
        function = re.escape(match.group(1).rstrip("()"))
        for name, sql in triggers:
            if re.search(rf"\b{function}\s*\(", sql, re.IGNORECASE):
                return name
    return triggers[0][0]


def _column_refusal(conn: sqlite3.Connection, table: str, error: sqlite3.Error, source: _Source) -> InvalidDatabase:
    """The refusal for a table that does not compile, naming the column when one column is the cause."""
    try:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({_quote(table)})")]
    except sqlite3.Error:
        columns = []
    for column in columns:
        if _compile(conn, f"SELECT {_quote(column)} FROM {_quote(table)} LIMIT 0", source) is not None:
            return _refusal("table", table, error, column=column)
    return _refusal("table", table, error)


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


# --- The child process and its parent -------------------------------------------------------


def _child_main() -> int:
    """``python -m builder.sqlite_check``: read a JSON request on stdin, print one JSON answer on stdout."""
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
        info = _inspect(Path(request["path"]), copy_to, limits, deadline)
        answer: dict[str, object] = {"info": asdict(info)}
    except InvalidDatabase as exc:
        answer = {"refused": exc.args[0]}
    except _TimedOut:
        answer = {"refused": _time_message(limits.seconds)}
    except MemoryError:
        answer = {"refused": _memory_message(limits.memory_bytes)}
    sys.stdout.write(json.dumps(answer))
    return 0


def _child_env(temp_dir: Path | None) -> dict[str, str]:
    """The child's whole environment: no secrets of the worker (no DATABASE_URL, no cloud keys)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    if temp_dir is not None:
        env["TMPDIR"] = env["SQLITE_TMPDIR"] = str(temp_dir)
    return env


def check_database(
    path: Path,
    *,
    copy_to: Path | None = None,
    limits: CheckLimits | None = None,
    temp_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> DatabaseInfo:
    """Check the SQLite file at ``path`` in a child process with resource limits; return ``DatabaseInfo``.

    Runs ``check_file`` here first, then every check of the module docstring in ``python -m
    builder.sqlite_check`` (address space and CPU seconds capped by ``limits``; killed if it
    is still running ``KILL_GRACE_SECONDS`` after ``limits.seconds``). With ``copy_to``, the
    child also writes the canonical copy there (``VACUUM INTO``, rollback-journal mode, same
    hardened settings). SQLite's temporary files go under ``temp_dir``. ``log`` gets the
    child's error output when it dies. The file at ``path`` is never changed.

    Raises ``InvalidDatabase`` with a message for the publisher when the file is refused, when
    the check runs out of time or memory, or when the child dies (then ``detail`` has its output).
    """
    limits = limits or CheckLimits()
    check_file(path, limits.max_bytes)
    request = {
        "path": str(Path(path).resolve()),
        "copy_to": str(copy_to) if copy_to else None,
        "limits": asdict(limits),
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-E", "-s", "-m", "builder.sqlite_check"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
            env=_child_env(temp_dir),
            timeout=limits.seconds + KILL_GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidDatabase(_time_message(limits.seconds), detail="killed at the wall-clock limit") from exc
    if completed.returncode == 0:
        answer = json.loads(completed.stdout)
        if "refused" in answer:
            raise InvalidDatabase(answer["refused"])
        info = answer["info"]
        return DatabaseInfo(
            tables=tuple(info["tables"]),
            views=tuple(info["views"]),
            size_bytes=info["size_bytes"],
            journal_mode=info["journal_mode"],
            warnings=tuple(info["warnings"]),
        )
    detail = completed.stderr[-4000:]
    if log is not None:
        log(f"The database check stopped with exit code {completed.returncode}:\n{detail}")
    if completed.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        cpu = max(1, math.ceil(limits.cpu_seconds or limits.seconds))
        raise InvalidDatabase(
            f"Checking the database used more than the {cpu} seconds of processor time it may use, so it was "
            "stopped. Make the file or its schema smaller (fewer tables, views or indexes) and upload it again; "
            "if it is well within the upload limit, tell us: the limit may be set too low.",
            detail=detail or f"killed by signal {-completed.returncode} (CPU time limit)",
        )
    if "MemoryError" in detail or "out of memory" in detail:
        raise InvalidDatabase(_memory_message(limits.memory_bytes), detail=detail)
    raise InvalidDatabase(
        f"SQLite stopped while reading the file (exit code {completed.returncode}), so it is damaged or "
        f"deliberately malformed. {_UPLOAD_INTACT}",
        detail=detail,
    )


if __name__ == "__main__":
    sys.exit(_child_main())
