"""Validate an uploaded file as a SQLite database, without trusting it.

``check_header`` is cheap (16 bytes) and runs in the web request; ``check_database``
opens the file read-only and runs ``PRAGMA quick_check`` in the build.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html, 1.3).
SQLITE_HEADER = b"SQLite format 3\x00"


class InvalidDatabase(ValueError):
    """The file is not a usable SQLite database. ``args[0]`` says why, for the publisher."""


@dataclass(frozen=True)
class DatabaseInfo:
    """What a valid database holds: table and view names, and its size in bytes."""

    tables: tuple[str, ...]
    views: tuple[str, ...]
    size_bytes: int


def check_header(fileobj: BinaryIO) -> None:
    """Raise ``InvalidDatabase`` unless ``fileobj`` starts with the SQLite header.

    Reads 16 bytes from the current position and seeks back to it.
    """
    start = fileobj.tell()
    head = fileobj.read(len(SQLITE_HEADER))
    fileobj.seek(start)
    if not head:
        raise InvalidDatabase("The file is empty. Choose a SQLite database file (.db, .sqlite, .sqlite3).")
    if head != SQLITE_HEADER:
        raise InvalidDatabase(
            "This is not a SQLite database: its first bytes are not the SQLite header. "
            "Export your data as SQLite (for example with sqlite-utils or the sqlite3 shell) and upload that file."
        )


def check_database(path: Path) -> DatabaseInfo:
    """Open ``path`` read-only and immutable, run ``PRAGMA quick_check``, list its tables.

    Returns a ``DatabaseInfo``. Raises ``InvalidDatabase`` if the header is wrong,
    SQLite cannot open it, ``quick_check`` reports damage, or it has no tables or views.
    """
    with path.open("rb") as fh:
        check_header(fh)
    uri = f"file:{path.resolve()}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise InvalidDatabase(
                    "SQLite reports the database is damaged: "
                    + "; ".join(result[:5])
                    + ". Run `sqlite3 your.db .recover` or export a fresh copy, then upload again."
                )
            rows = conn.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidDatabase(f"SQLite could not read the file ({exc}). Upload an intact SQLite database.") from exc
    tables = tuple(name for kind, name in rows if kind == "table")
    views = tuple(name for kind, name in rows if kind == "view")
    if not tables and not views:
        raise InvalidDatabase("The database has no tables or views, so there is nothing to publish.")
    return DatabaseInfo(tables=tables, views=views, size_bytes=path.stat().st_size)
