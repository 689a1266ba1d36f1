"""Write the corpus of hostile, broken and odd-but-valid SQLite uploads into a folder.

Importable (``make_corpus(folder) -> {case name: path}``, ``CASES``) and runnable
(``python tests/corpus/make_corpus.py FOLDER``). Tests generate it once per session into a
temporary folder; no corpus file is committed. Every case says what Glasshouse must do with
it: ``refusal`` is a fragment of the refusal message (``None``: the file is accepted) and
``stage`` where it is refused: ``"upload"`` (the header check in the web request, before
anything is stored) or ``"build"`` (the checks that open the file, in the build worker).
"""

from __future__ import annotations

import io
import random
import sqlite3
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: The markup put in names and values of ``html_names.db``; it must be shown as text everywhere.
HTML_TABLE = '<script>alert("table")</script>'
HTML_COLUMN = "<img src=x onerror=alert(1)>"
HTML_VALUE = "</pre><script>alert('value')</script>"
#: A function no SQLite has; the databases that call it were made with it defined in Python.
MISSING_FUNCTION = "glasshouse_missing_fn"
RUNAWAY_VIEW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c"


@dataclass(frozen=True)
class Case:
    """One corpus file: its name, how to write it, and the expected outcome (see the module docstring)."""

    name: str
    write: Callable[[Path], None]
    refusal: str | None = None
    stage: str = "build"

    @property
    def filename(self) -> str:
        return f"{self.name}.db"


def _database(path: Path, *statements: str, page_size: int = 4096, rows: int = 0) -> None:
    """A valid rollback-journal database: ``statements`` run in order, plus ``rows`` rows in ``filler``."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size = {page_size}")
    for statement in statements:
        conn.execute(statement)
    if rows:
        conn.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, label TEXT)")
        conn.executemany("INSERT INTO filler (label) VALUES (?)", ((f"row {i} " + "x" * 40,) for i in range(rows)))
    conn.commit()
    conn.close()


def _with_missing_function(path: Path, *statements: str) -> None:
    """Run ``statements`` with ``MISSING_FUNCTION`` defined (deterministic), so the schema calls it."""
    conn = sqlite3.connect(path)
    conn.create_function(MISSING_FUNCTION, 1, lambda value: value, deterministic=True)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _patched(offset: int, data: bytes) -> Callable[[Path], None]:
    """A valid 20-page database with ``data`` written over its bytes at ``offset``."""

    def write(path: Path) -> None:
        _database(path, rows=1500)
        raw = bytearray(path.read_bytes())
        raw[offset : offset + len(data)] = data
        path.write_bytes(bytes(raw))

    return write


def _truncated(path: Path) -> None:
    _database(path, rows=1500)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2 + 100])


def _wrong_page_count(path: Path) -> None:
    _database(path, rows=1500)
    raw = bytearray(path.read_bytes())
    pages = int.from_bytes(raw[28:32], "big")
    raw[28:32] = (pages + 7).to_bytes(4, "big")
    path.write_bytes(bytes(raw))


def _corrupted_page(path: Path) -> None:
    """A leaf page of ``filler`` overwritten with noise: the header and size are right, the content is not."""
    _database(path, rows=1500)
    raw = bytearray(path.read_bytes())
    noise = random.Random(9).randbytes(4096)
    raw[4096 * 4 : 4096 * 5] = noise  # page 5: a leaf of the filler table's b-tree
    path.write_bytes(bytes(raw))


def _many_tables(path: Path) -> None:
    """A schema of 20,000 tables, written into sqlite_master directly (CREATE TABLE one by one takes a minute).

    They share one root page: what a hostile file would do, and the table cap must refuse it
    before anything reads that far.
    """
    _database(path, "CREATE TABLE t00000 (a)", page_size=512)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema = ON")
    conn.executemany(
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', ?, ?, 2, ?)",
        ((f"t{n:05d}", f"t{n:05d}", f"CREATE TABLE t{n:05d} (a)") for n in range(1, 20_000)),
    )
    conn.commit()
    conn.close()


def _unknown_virtual_table(path: Path) -> None:
    """``CREATE VIRTUAL TABLE mystery USING nosuchmodule``, written into sqlite_master directly."""
    _database(path, "CREATE TABLE t (a)")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES "
        "('table', 'mystery', 'mystery', 0, 'CREATE VIRTUAL TABLE mystery USING nosuchmodule(x)')"
    )
    conn.commit()
    conn.close()


def _wal(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes (body) VALUES (?)", [("checkpointed",), ("also checkpointed",)])
    conn.commit()
    conn.close()  # the last connection checkpoints; the file stays in WAL mode (bytes 18 and 19 are 2)


def _fts5(path: Path) -> None:
    _database(
        path,
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT)",
        "INSERT INTO docs (title, body) VALUES ('Glass', 'A house of glass'), ('Stone', 'Throw no stones')",
        "CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='docs', content_rowid='id')",
        "INSERT INTO docs_fts (docs_fts) VALUES ('rebuild')",
        # The triggers `sqlite-utils enable-fts --create-triggers` writes: they write to the FTS table.
        "CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN "
        "INSERT INTO docs_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END",
        "CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN "
        "INSERT INTO docs_fts (docs_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END",
    )


def _html_names(path: Path) -> None:
    table = '"' + HTML_TABLE.replace('"', '""') + '"'
    column = '"' + HTML_COLUMN.replace('"', '""') + '"'
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {column} TEXT)")
    conn.executemany(f"INSERT INTO {table} ({column}) VALUES (?)", [(HTML_VALUE,), ("<b>bold</b>",)])
    conn.commit()
    conn.close()


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "id,name\n1,glass\n")
    return buffer.getvalue()


_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200))
_HTML = b"<!DOCTYPE html>\n<html><head><title>x</title></head><body><script>alert(1)</script></body></html>\n"

CASES: tuple[Case, ...] = (
    # Refused in the web request: the header and size say it is not a whole SQLite file.
    Case("empty", _bytes(b""), "empty", "upload"),
    Case("random_bytes", _bytes(random.Random(1).randbytes(8192)), "not a SQLite database", "upload"),
    Case("png_renamed", _bytes(_PNG), "looks like a PNG image", "upload"),
    Case("html_renamed", _bytes(_HTML), "looks like an HTML", "upload"),
    Case("zip_renamed", _bytes(_zip_bytes()), "looks like a ZIP archive", "upload"),
    Case("truncated", _truncated, "cut short", "upload"),
    Case("mismatched_versions", _patched(18, b"\x01\x02"), "file-format bytes", "upload"),
    Case("wrong_page_count", _wrong_page_count, "header says", "upload"),
    Case("page_size_not_power_of_two", _patched(16, (1000).to_bytes(2, "big")), "not a power of two", "upload"),
    # Refused in the build: only opening the file shows what is wrong.
    Case("corrupted_page", _corrupted_page, "damaged"),
    Case("twenty_thousand_tables", _many_tables, "20,000 tables"),
    Case(
        "trigger_missing_function",
        lambda path: _with_missing_function(
            path,
            "CREATE TABLE t (a)",
            f"CREATE TRIGGER t_audit AFTER INSERT ON t BEGIN SELECT {MISSING_FUNCTION}(new.a); END",
        ),
        f"Trigger `t_audit` calls {MISSING_FUNCTION}()",
    ),
    Case(
        "view_missing_function",
        lambda path: _with_missing_function(
            path, "CREATE TABLE t (a)", f"CREATE VIEW shouting AS SELECT {MISSING_FUNCTION}(a) AS loud FROM t"
        ),
        f"View `shouting` calls {MISSING_FUNCTION}()",
    ),
    Case(
        "generated_column_missing_function",
        lambda path: _with_missing_function(path, f"CREATE TABLE t (a, b AS ({MISSING_FUNCTION}(a)))"),
        f"Column `b` of table `t` calls {MISSING_FUNCTION}()",
    ),
    Case(
        "view_load_extension",
        lambda path: _database(
            path, "CREATE TABLE t (a)", "CREATE VIEW v AS SELECT load_extension('/tmp/evil.so') AS x"
        ),
        "View `v` calls load_extension(), which Glasshouse does not allow",
    ),
    Case("unknown_virtual_table", _unknown_virtual_table, "virtual table of the module `nosuchmodule`"),
    # Accepted.
    Case("wal_mode", _wal),
    Case("fts5", _fts5),
    Case("one_empty_table", lambda path: _database(path, "CREATE TABLE empty (id INTEGER PRIMARY KEY, name TEXT)")),
    Case("html_names", _html_names),
    Case(
        "runaway_recursive_view",
        lambda path: _database(
            path, "CREATE TABLE t (a)", "INSERT INTO t VALUES (1)", f"CREATE VIEW runaway AS {RUNAWAY_VIEW}"
        ),
    ),
)
REFUSED = tuple(case for case in CASES if case.refusal is not None)
ACCEPTED = tuple(case for case in CASES if case.refusal is None)


def make_corpus(folder: Path) -> dict[str, Path]:
    """Write every case of ``CASES`` as ``<folder>/<name>.db``; return ``{name: path}``. Overwrites old files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in CASES:
        path = folder / case.filename
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        case.write(path)
        paths[case.name] = path
    return paths


if __name__ == "__main__":
    for name, path in make_corpus(Path(sys.argv[1])).items():
        print(f"{name:36} {path.stat().st_size:>10,} bytes  {path}")
