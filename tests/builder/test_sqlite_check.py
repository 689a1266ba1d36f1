from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from builder.sqlite_check import SQLITE_HEADER, InvalidDatabase, check_database, check_header


def test_it_accepts_chinook_and_lists_its_tables(chinook: Path) -> None:
    info = check_database(chinook)
    assert "Album" in info.tables
    assert len(info.tables) == 11
    assert info.size_bytes == chinook.stat().st_size


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"PK\x03\x04 this is a zip file", "not a SQLite database"),
        (b"name,value\n1,2\n", "not a SQLite database"),
    ],
)
def test_it_rejects_files_that_are_not_sqlite(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.db"
    path.write_bytes(content)
    with pytest.raises(InvalidDatabase, match=message):
        check_database(path)


def test_header_check_leaves_the_file_position_alone() -> None:
    fh = io.BytesIO(SQLITE_HEADER + b"rest")
    fh.seek(0)
    check_header(fh)
    assert fh.tell() == 0


def test_it_rejects_a_database_with_no_tables(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")  # forces SQLite to write the header page
    conn.commit()
    conn.close()
    with pytest.raises(InvalidDatabase, match="no tables"):
        check_database(path)


def test_it_rejects_a_truncated_database(tmp_path: Path, chinook: Path) -> None:
    path = tmp_path / "truncated.db"
    path.write_bytes(chinook.read_bytes()[: 200 * 1024])
    with pytest.raises(InvalidDatabase):
        check_database(path)


def test_it_accepts_a_wal_mode_database_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    assert check_database(path).tables == ("t",)
    assert path.read_bytes() == before
