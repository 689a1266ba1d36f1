"""``builder.tables.describe_tables``: the tables, row counts and typed columns the gallery and build pages show."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from builder.tables import DescribeError, describe_tables, reading, table_counts


def test_it_describes_the_eleven_tables_of_chinook(shared_data: Path) -> None:
    tables = describe_tables(shared_data / "chinook.sqlite")
    assert len(tables) == 11
    album = next(table for table in tables if table["name"] == "Album")
    assert album == {
        "name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"], "types": ["integer", "nvarchar(160)", "integer"]
    }  # fmt: skip


def test_it_keeps_awkward_table_names_and_skips_views_and_fts_shadow_tables(shared_data: Path) -> None:
    names = {table["name"]: table["rows"] for table in describe_tables(shared_data / "datasette-fixtures.db")}
    assert names["table/with/slashes.csv"] == 1
    assert names["Table With Space In Name"] == 0
    assert names["123_starts_with_digits"] == 0
    assert names["select"] == 1
    assert "searchable_fts" in names  # the full-text table itself is listed...
    assert not {"searchable_fts_data", "searchable_fts_idx", "searchable_fts_docsize", "searchable_fts_config"} & set(names)
    assert not {"simple_view", "paginated_view"} & set(names)  # ...views are not


def test_table_counts_cover_every_table_datasette_lists_shadow_tables_included(shared_data: Path) -> None:
    database = shared_data / "datasette-fixtures.db"
    counts = table_counts(database)
    with sqlite3.connect(database) as conn:
        listed = [name for (name,) in conn.execute("select name from sqlite_master where type = 'table' order by name")]
    assert list(counts) == listed  # Datasette's table_names(), hidden ones included
    assert counts["searchable_fts_data"] is not None and counts["searchable_fts_config"] is not None
    described = {table["name"]: table["rows"] for table in describe_tables(database)}
    assert all(counts[name] == rows for name, rows in described.items())
    assert table_counts(shared_data / "chinook.sqlite")["PlaylistTrack"] == 8715


def test_a_table_whose_module_is_missing_counts_as_none(tmp_path: Path) -> None:
    path = tmp_path / "vt.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (x)")
        conn.execute("insert into t values (1)")
        conn.execute("pragma writable_schema = on")
        # A virtual table of a module no SQLite here has, as a database made elsewhere may hold.
        conn.execute("insert into sqlite_master values ('table', 'v', 'v', 0, 'CREATE VIRTUAL TABLE v USING nosuchmodule(a)')")
    assert table_counts(path) == {"t": 1, "v": None}


def test_it_reads_the_file_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE "a ""quoted"" name" (x, y REAL)')
    conn.executemany('INSERT INTO "a ""quoted"" name" VALUES (?, ?)', [(1, 1.5), (2, None)])
    conn.commit()
    conn.close()
    before = path.read_bytes()
    path.chmod(0o444)
    assert describe_tables(path) == [{"name": 'a "quoted" name', "rows": 2, "columns": ["x", "y"], "types": ["", "real"]}]
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_raises_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database at all, just some text " * 20)
    with pytest.raises(DescribeError, match="Could not"):
        describe_tables(path)


def test_the_copy_is_read_with_the_checks_hardened_settings(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    with reading(path, DescribeError) as conn:
        assert conn.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
        assert conn.execute("PRAGMA trusted_schema").fetchone() == (0,)
        assert conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED) == 0
