"""Build-time facts about a gallery's database: its tables, their row counts and columns.

Plain Python (no Django): the build calls ``describe_tables`` on the canonical copy and
puts the result in ``manifest.json`` under ``"tables"``; the app origin shows it on the
gallery page, the front page and the share card.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.sqlite_check import harden

#: Suffixes of the shadow tables SQLite's FTS3/4/5 modules create for a virtual table.
_FTS_SHADOW_SUFFIXES = ("_content", "_segments", "_segdir", "_docsize", "_stat", "_data", "_idx", "_config")


class DescribeError(Exception):
    """The database could not be read; ``args[0]`` says why, for the publisher."""


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier, safe for any table or column name."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def reading(db_path: Path, error: type[Exception]) -> Iterator[sqlite3.Connection]:
    """A connection to the SQLite file at ``db_path``, read-only and immutable, closed on exit.

    The file is never changed and needs no write access. The connection has the hardened
    settings of the build's database check (``builder.sqlite_check.harden``: defensive,
    ``trusted_schema`` off, tight limits), although it only ever opens the checked copy.
    A ``sqlite3.Error`` while opening or inside the block is raised as ``error(reason)``,
    the reason saying what failed.
    """
    try:
        conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro&immutable=1", uri=True)
        harden(conn)
    except sqlite3.Error as exc:
        raise error(f"Could not open the database: {exc}") from exc
    try:
        yield conn
    except sqlite3.Error as exc:
        raise error(f"Could not read the database's tables: {exc}") from exc
    finally:
        conn.close()


def _fts_shadow_tables(conn: sqlite3.Connection) -> set[str]:
    """Names of FTS shadow tables: ``<fts table><suffix>`` for every FTS virtual table."""
    fts_tables = [
        name
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        if sql and "VIRTUAL TABLE" in sql.upper() and "USING FTS" in sql.upper()
    ]
    return {f"{fts}{suffix}" for fts in fts_tables for suffix in _FTS_SHADOW_SUFFIXES}


def user_tables(conn: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    """``[(table name, [column name, ...]), ...]`` of every user table, in name order.

    Views, SQLite's own tables (``sqlite_*``) and the shadow tables of full-text indexes
    are left out (see ``describe_tables``). Raises ``sqlite3.Error`` if the schema cannot be read.
    """
    shadow = _fts_shadow_tables(conn)
    names = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY name"
        )
        if name not in shadow
    ]
    return [(name, [row[1] for row in conn.execute(f"PRAGMA table_info({quote_identifier(name)})")]) for name in names]


def describe_tables(db_path: Path) -> list[dict[str, object]]:
    """Describe every user table of the SQLite database at ``db_path``, in name order.

    Returns ``[{"name": str, "rows": int, "columns": [str, ...], "types": [str, ...]}, ...]``,
    ``types`` being each column's declared type in lower case (``"integer"``, ``"text"``...;
    ``""`` where none is declared), in the order of ``columns``. Views and
    SQLite's own tables (``sqlite_*``) are left out, and so are the shadow tables of
    full-text indexes (``<fts>_content``, ``_segments``, ``_segdir``, ``_docsize``,
    ``_stat``, ``_data``, ``_idx``, ``_config``), which Datasette hides too; the FTS
    virtual table itself is listed. The file is opened read-only and immutable, so
    it is never changed and needs no write access. Raises ``DescribeError`` if it is
    not a readable SQLite database.
    """
    with reading(db_path, DescribeError) as conn:
        tables: list[dict[str, object]] = []
        for name, columns in user_tables(conn):
            (rows,) = conn.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()
            types = [str(row[2]).lower() for row in conn.execute(f"PRAGMA table_info({quote_identifier(name)})")]
            tables.append({"name": name, "rows": int(rows), "columns": columns, "types": types})
        return tables


def table_counts(db_path: Path) -> dict[str, int | None]:
    """The row count of every table Datasette lists (``sqlite_master`` entries of type ``table``:
    full-text shadow tables and SQLite's own included), by name: what ``datasette inspect`` records.

    The reader's Datasette takes these as its inspect data, so it counts no table itself when it
    starts (it counts every table of an immutable database then, which for a database read lazily
    would fetch most of the file). A table whose count fails (a virtual table of a module this
    Python lacks) maps to ``None``. Raises ``DescribeError`` if the database cannot be read.
    """
    with reading(db_path, DescribeError) as conn:
        names = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        counts: dict[str, int | None] = {}
        for name in names:
            try:
                (rows,) = conn.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()
                counts[name] = int(rows)
            except sqlite3.Error:
                counts[name] = None
        return counts
