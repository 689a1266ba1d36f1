"""``builder.sqlite_check`` over the hostile and broken corpus (``tests/corpus``), and its limits."""

from __future__ import annotations

import io
import re
import sqlite3
import time
from pathlib import Path

import pytest

from builder import sqlite_check
from builder.sqlite_check import (
    CheckLimits,
    InvalidDatabase,
    check_database,
    check_file,
    check_header,
    harden,
    open_untrusted,
)
from tests.corpus.make_corpus import ACCEPTED, REFUSED, RUNAWAY_VIEW, Case

#: The default upload cap, as the worker passes it.
LIMITS = CheckLimits(max_bytes=100 * 1024 * 1024)


def _ids(cases: tuple[Case, ...]) -> list[str]:
    return [case.name for case in cases]


def test_it_accepts_chinook_and_lists_its_tables(chinook: Path) -> None:
    info = check_database(chinook, limits=LIMITS)
    assert "Album" in info.tables
    assert len(info.tables) == 11
    assert info.size_bytes == chinook.stat().st_size
    assert info.journal_mode == "rollback" and info.warnings == ()


@pytest.mark.parametrize("case", REFUSED, ids=_ids(REFUSED))
def test_it_refuses_each_broken_or_hostile_file_saying_what_to_change(
    corpus: dict[str, Path], case: Case, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.db"
    with pytest.raises(InvalidDatabase) as refused:
        check_database(corpus[case.name], copy_to=copy, limits=LIMITS)
    message = refused.value.args[0]
    assert case.refusal in message
    assert "upload" in message.lower(), "every refusal says what to do next"
    assert not copy.exists(), "nothing is copied from a refused file"


@pytest.mark.parametrize("case", REFUSED, ids=_ids(REFUSED))
def test_the_header_check_alone_refuses_what_the_header_and_size_show(corpus: dict[str, Path], case: Case) -> None:
    if case.stage == "upload":
        with pytest.raises(InvalidDatabase, match=case.refusal):
            check_file(corpus[case.name], LIMITS.max_bytes)
    else:
        check_file(corpus[case.name], LIMITS.max_bytes)  # only opening it shows the problem


@pytest.mark.parametrize("case", ACCEPTED, ids=_ids(ACCEPTED))
def test_it_accepts_each_odd_but_valid_file_and_copies_it_in_rollback_journal_mode(
    corpus: dict[str, Path], case: Case, tmp_path: Path
) -> None:
    source = corpus[case.name]
    before = source.read_bytes()
    copy = tmp_path / "copy.db"
    info = check_database(source, copy_to=copy, limits=LIMITS)
    assert source.read_bytes() == before, "the upload is never changed"
    assert copy.read_bytes()[18:20] == b"\x01\x01", "the published copy is in rollback-journal mode"
    check_file(copy)
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        copied = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
    assert sorted(copied) == sorted(info.tables + info.views)


def test_a_wal_mode_database_is_accepted_with_a_warning_that_uncheckpointed_changes_are_missing(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    info = check_database(corpus["wal_mode"], copy_to=tmp_path / "copy.db", limits=LIMITS)
    assert info.journal_mode == "wal"
    assert info.tables == ("notes",)
    (warning,) = info.warnings
    assert "WAL mode" in warning and "not checkpointed before upload" in warning and "missing" in warning


def test_the_runaway_recursive_view_is_accepted_because_nothing_runs_it(corpus: dict[str, Path]) -> None:
    started = time.monotonic()
    assert check_database(corpus["runaway_recursive_view"], limits=LIMITS).views == ("runaway",)
    assert time.monotonic() - started < 10


def test_header_check_leaves_the_file_position_alone(make_sqlite) -> None:
    fh = io.BytesIO(make_sqlite().read_bytes())
    check_header(fh)
    assert fh.tell() == 0


def test_the_size_cap_holds_before_opening(make_sqlite) -> None:
    path = make_sqlite()
    with pytest.raises(InvalidDatabase, match="larger than the"):
        check_file(path, max_bytes=path.stat().st_size - 1)
    check_file(path, max_bytes=path.stat().st_size)


def test_a_header_page_count_that_is_not_valid_makes_the_size_decide(make_sqlite) -> None:
    """The in-header size counts only while the change counter (24) equals version-valid-for (92)."""
    raw = bytearray(make_sqlite().read_bytes())
    raw[92:96] = (int.from_bytes(raw[24:28], "big") + 1).to_bytes(4, "big")
    raw[28:32] = (999).to_bytes(4, "big")  # stale, so ignored
    assert check_header(io.BytesIO(bytes(raw))).page_count == len(raw) // 4096
    with pytest.raises(InvalidDatabase, match="not a whole number of 4,096-byte pages"):
        check_header(io.BytesIO(bytes(raw) + b"\x00" * 100))


def test_a_database_with_no_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")  # forces SQLite to write the header page
    conn.commit()
    conn.close()
    with pytest.raises(InvalidDatabase, match="no tables"):
        check_database(path, limits=LIMITS)


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (CheckLimits(max_tables=2), "3 tables \\(and 1 views\\); Glasshouse accepts at most 2 tables and views"),
        (CheckLimits(max_columns=3), "Table `wide` has 4 columns; Glasshouse accepts at most 3 per table"),
        (
            CheckLimits(max_schema_bytes=50),
            r"schema \(its CREATE statements\) is 95 bytes; Glasshouse accepts at most 50",
        ),
    ],
    ids=["tables", "columns", "schema-size"],
)
def test_the_caps_on_tables_columns_and_schema_size_hold(tmp_path: Path, limits: CheckLimits, message: str) -> None:
    path = tmp_path / "caps.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE a (x); CREATE TABLE b (x); CREATE TABLE wide (c1, c2, c3, c4); CREATE VIEW v AS SELECT 1;"
        )
    conn.close()
    with pytest.raises(InvalidDatabase, match=message):
        check_database(path, limits=limits)
    check_database(path)  # within the defaults


def test_a_check_over_its_memory_limit_stops_with_a_clear_reason_not_a_dead_worker(
    chinook: Path, tmp_path: Path
) -> None:
    """8 MB of address space is too little for SQLite to open Chinook: the child stops, this process goes on."""
    copy = tmp_path / "copy.db"
    with pytest.raises(InvalidDatabase, match="needed more than the 8 MB of memory it may use"):
        check_database(chinook, copy_to=copy, limits=CheckLimits(memory_bytes=8 * 1024 * 1024))
    assert check_database(chinook, copy_to=copy).tables  # the same check with room to work


def test_sqlite_running_out_of_memory_on_a_huge_schema_is_a_clear_refusal(tmp_path: Path) -> None:
    """50 tables of 1,000 columns each, sharing one root page: SQLite itself runs out of memory checking it."""
    path = tmp_path / "wide.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE w000 (a)")
        conn.execute("PRAGMA writable_schema = ON")
        columns = ", ".join(f"column_with_a_long_name_{n:04d} TEXT DEFAULT 'a default value'" for n in range(1000))
        conn.executemany(
            "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', ?, ?, 2, ?)",
            ((f"w{n:03d}", f"w{n:03d}", f"CREATE TABLE w{n:03d} ({columns})") for n in range(1, 50)),
        )
    conn.close()
    roomy = CheckLimits(max_tables=10_000, max_columns=2000, max_schema_bytes=1 << 30)
    with pytest.raises(InvalidDatabase, match="needed more than the 512 MB of memory it may use"):
        check_database(path, limits=roomy)


def test_a_broken_freelist_is_found_by_quick_check(make_sqlite) -> None:
    """Nothing but ``PRAGMA quick_check`` reads the freelist: the copy and the compiles would pass."""
    path = make_sqlite()
    raw = bytearray(path.read_bytes())
    raw[32:36] = (50).to_bytes(4, "big")  # first freelist trunk page: beyond the end of the file
    raw[36:40] = (1).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidDatabase, match="damaged: .*Main freelist: invalid page number 50"):
        check_database(path)


def test_load_extension_is_refused_by_name_where_sqlite_would_never_compile_it(tmp_path: Path) -> None:
    """A CHECK constraint only compiles for writes, which a gallery never makes: only the name gives it away."""
    path = tmp_path / "check.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a CHECK (load_extension('/tmp/evil.so') IS NULL))")
    conn.close()
    with pytest.raises(InvalidDatabase, match="Table `t` calls load_extension\\(\\), which Glasshouse does not allow"):
        check_database(path)


def slow_schema(path: Path) -> Path:
    """A database whose schema takes seconds of CPU to parse: 900 views of 99-term compound selects.

    SQLite parses the schema between progress-handler calls, so only the child's CPU limit
    or the parent's wall-clock kill can stop it.
    """
    body = " UNION ALL ".join(f"SELECT a + {n}, b * {n}, c || {n} FROM t WHERE a > {n}" for n in range(99))
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a, b, c)")
        for number in range(900):
            conn.execute(f"CREATE VIEW v{number:03d} AS {body}")
    conn.close()
    return path


@pytest.mark.slow
def test_a_check_past_its_wall_clock_limit_is_killed_with_a_clear_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chinook's check can finish inside 0.05 s on an idle machine; this schema cannot.
    path = slow_schema(tmp_path / "views.db")
    monkeypatch.setattr(sqlite_check, "KILL_GRACE_SECONDS", 0.0)
    started = time.monotonic()
    with pytest.raises(InvalidDatabase, match="took longer than the 0.05-second limit") as refused:
        check_database(path, limits=CheckLimits(seconds=0.05, cpu_seconds=60, max_schema_bytes=1 << 30))
    assert refused.value.detail == "killed at the wall-clock limit"
    assert time.monotonic() - started < 5


def test_the_progress_handler_interrupts_a_statement_past_the_deadline(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    harden(conn, deadline=time.monotonic() + 0.2)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        conn.execute(RUNAWAY_VIEW).fetchall()
    assert time.monotonic() - started < 5


def test_a_hardened_connection_is_defensive_without_trusted_schema_and_with_tight_limits(make_sqlite) -> None:
    conn = open_untrusted(make_sqlite())
    assert conn.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
    assert not conn.getconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA)
    assert conn.execute("PRAGMA trusted_schema").fetchone() == (0,)
    assert conn.execute("PRAGMA cell_size_check").fetchone() == (1,)
    assert conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED) == 0
    assert conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == 64 * 1024 * 1024
    with pytest.raises(sqlite3.OperationalError, match="too many attached databases"):
        conn.execute("ATTACH ':memory:' AS other")


def test_the_checker_process_gets_none_of_the_workers_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env = sqlite_check.child_env(tmp_path)
    assert "secret" not in repr(env)
    assert env["SQLITE_TMPDIR"] == str(tmp_path)


@pytest.mark.parametrize("module", ["dbstat", "fts5vocab"])
def test_a_virtual_table_module_sqlite_has_but_glasshouse_does_not_allow_is_refused(
    tmp_path: Path, module: str
) -> None:
    """Only the allowlist stops these: this SQLite has both modules (Pyodide's may not)."""
    path = tmp_path / "module.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
        arguments = "(docs, row)" if module == "fts5vocab" else ""
        conn.execute(f"CREATE VIRTUAL TABLE odd USING {module}{arguments}")
    conn.close()
    with pytest.raises(InvalidDatabase, match=f"Table `odd` is a virtual table of the module `{module}`"):
        check_database(path)


def test_fts4_and_rtree_tables_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "modules.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIRTUAL TABLE notes USING fts4(body)")
        conn.execute("CREATE VIRTUAL TABLE places USING rtree(id, min_x, max_x, min_y, max_y)")
        conn.execute("INSERT INTO places VALUES (1, 0, 1, 0, 1)")
    conn.close()
    assert {"notes", "places"} <= set(check_database(path).tables)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE VIRTUAL/**/TABLE odd USING dbstat", "virtual table of the module `dbstat`"),
        ("create virtual table odd using -- a comment\n dbstat", "virtual table of the module `dbstat`"),
        ('CREATE VIRTUAL TABLE "odd" USING "dbstat"', "virtual table of the module `dbstat`"),
    ],
    ids=["comment-inside-keywords", "line-comment", "quoted-module"],
)
def test_comments_in_a_hostile_schema_do_not_hide_a_virtual_tables_module(
    tmp_path: Path, sql: str, message: str
) -> None:
    path = tmp_path / "evasive.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a)")
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("INSERT INTO sqlite_master VALUES ('table', 'odd', 'odd', 0, ?)", (sql,))
    conn.close()
    with pytest.raises(InvalidDatabase, match=re.escape(message)):
        check_database(path)


@pytest.mark.parametrize("call", ["load_extension/**/('/tmp/evil.so')", "\"load_extension\"('/tmp/evil.so')"])
def test_comments_or_quotes_do_not_hide_load_extension(tmp_path: Path, call: str) -> None:
    path = tmp_path / "evasive.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE t (a CHECK ({call} IS NULL))")
    conn.close()
    with pytest.raises(InvalidDatabase, match="Table `t` calls load_extension"):
        check_database(path)


def test_a_view_over_a_full_text_table_is_accepted_with_a_warning(corpus: dict[str, Path], tmp_path: Path) -> None:
    """SQLite refuses it while trusted_schema is off (as in the gallery), but it is no danger at build time."""
    path = tmp_path / "fts_view.db"
    path.write_bytes(corpus["fts5"].read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW glassy AS SELECT * FROM docs_fts WHERE docs_fts MATCH 'glass'")
    conn.close()
    info = check_database(path)
    assert "glassy" in info.views
    (warning,) = info.warnings
    assert warning.startswith("View `glassy` reads a virtual table")


def test_a_view_over_a_full_text_table_that_calls_a_missing_function_is_still_refused(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "fts_view.db"
    path.write_bytes(corpus["fts5"].read_bytes())
    with sqlite3.connect(path) as conn:
        conn.create_function("nosuch", 1, lambda value: value)
        conn.execute("CREATE VIEW odd AS SELECT nosuch(title) FROM docs_fts")
    conn.close()
    with pytest.raises(InvalidDatabase, match=re.escape("View `odd` calls nosuch()")):
        check_database(path)


@pytest.mark.slow
def test_a_check_over_its_cpu_time_limit_is_stopped_even_where_the_progress_handler_cannot_reach(
    tmp_path: Path,
) -> None:
    """Parsing 900 views of 99-term compound selects (3 s of CPU) happens between progress-handler calls."""
    path = slow_schema(tmp_path / "views.db")
    roomy = CheckLimits(seconds=120, cpu_seconds=1, max_schema_bytes=1 << 30)
    started = time.monotonic()
    with pytest.raises(InvalidDatabase, match="used more than the 1 seconds of processor time") as stopped:
        check_database(path, limits=roomy)
    assert "CPU time limit" in stopped.value.detail
    assert time.monotonic() - started < 60, "stopped by the CPU limit, long before the wall-clock one"
