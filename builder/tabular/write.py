"""Writing the sheets ``builder.tabular.read`` yields into a SQLite database with sqlite-utils (the
Datasette ecosystem's own library): one table a sheet, column types detected from CSV text
(``TypeTracker``), kept from JSON and Excel values, and full-text search where the publisher asked.

Runs in the conversion's child process (``builder.tabular.child``), under its limits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.utils import TypeTracker

from builder.sqlite_check import format_megabytes
from builder.tabular.read import InvalidTabularFile, Sheet

#: Rows written between two checks of the database's size against the cap.
SIZE_CHECK_EVERY = 2000


@dataclass(frozen=True)
class TableMade:
    """A table the conversion made: ``name``, ``rows``, ``columns`` as ``(name, SQLite type)`` in order, and
    the columns full-text search covers (``searchable``; empty without search)."""

    name: str
    rows: int
    columns: tuple[tuple[str, str], ...]
    searchable: tuple[str, ...] = ()


def _capped(rows: Iterator[dict[str, Any]], output: Path, max_bytes: int | None) -> Iterator[dict[str, Any]]:
    """``rows``, stopping with ``InvalidTabularFile`` once the database at ``output`` is over ``max_bytes``."""
    for count, row in enumerate(rows, start=1):
        if max_bytes is not None and count % SIZE_CHECK_EVERY == 0 and os.path.getsize(output) > max_bytes:
            raise InvalidTabularFile(
                f"The tables made from the file are larger than the {format_megabytes(max_bytes)} a converted "
                "database may be. Remove rows or columns you do not need and upload it again."
            )
        yield row


def write_sheet(db: Database, sheet: Sheet, output: Path, max_bytes: int | None) -> None:
    """Insert ``sheet``'s rows into table ``sheet.name`` of ``db``: text's types detected, typed values kept.

    A sheet with no rows still makes its table (every column text). Raises ``InvalidTabularFile``
    over ``max_bytes`` (``_capped``) and whatever the sheet's reader raises.
    """
    table = db.table(sheet.name)
    rows = _capped(sheet.rows, output, max_bytes)
    tracker = None if sheet.typed else TypeTracker()
    table.insert_all(tracker.wrap(rows) if tracker else rows, batch_size=1000, alter=True)
    if not table.exists():
        table.create({column: str for column in sheet.columns})
    elif tracker is not None:
        # CSV text that is all integers or all numbers becomes INTEGER or FLOAT (NULLs do not count).
        table.transform(types={column: kind for column, kind in tracker.types.items() if column in sheet.columns})


def make_searchable(db: Database, name: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Enable full-text search (FTS5, sqlite-utils ``enable_fts``) on table ``name``: on the ``wanted``
    columns it has, or, with none wanted, on every text column; return the columns covered."""
    table = db.table(name)
    text_columns = [column.name for column in table.columns if column.type.upper() == "TEXT"]
    chosen = [column for column in wanted if column in {c.name for c in table.columns}] if wanted else text_columns
    if chosen:
        table.enable_fts(chosen, fts_version="FTS5", create_triggers=False)
    return tuple(chosen)


def write_tables(
    sheets: list[Sheet],
    output: Path,
    *,
    max_bytes: int | None,
    full_text_search: bool = False,
    search_columns: tuple[str, ...] = (),
) -> list[TableMade]:
    """Write every sheet into a new SQLite database at ``output``; return what was made, table by table.

    With ``full_text_search``, each table gets full-text search (``make_searchable``) on
    ``search_columns`` (those it has) or on all its text columns. Raises ``InvalidTabularFile``.
    """
    db = Database(output)
    made = []
    try:
        for sheet in sheets:
            write_sheet(db, sheet, output, max_bytes)
            searchable = make_searchable(db, sheet.name, search_columns) if full_text_search else ()
            table = db.table(sheet.name)
            made.append(
                TableMade(
                    name=sheet.name,
                    rows=table.count,
                    columns=tuple((column.name, column.type.lower()) for column in table.columns),
                    searchable=searchable,
                )
            )
    finally:
        db.close()
    if max_bytes is not None and output.stat().st_size > max_bytes:
        raise InvalidTabularFile(
            f"The tables made from the file are {format_megabytes(output.stat().st_size)}, larger than the "
            f"{format_megabytes(max_bytes)} a converted database may be. Remove rows or columns you do not need "
            "and upload it again."
        )
    return made
