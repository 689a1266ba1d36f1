"""What SQLite says about an untrusted database's schema: only what a gallery's browser can run.

``check_schema`` runs in the check's child process (``builder.sqlite_check.child``) on a
hardened connection. It refuses virtual tables of modules outside ``ALLOWED_MODULES``, calls of
``REFUSED_FUNCTIONS`` (by name, wherever they hide), tables wider than the limit, and every
table, view and trigger that does not compile (a function that needs an extension or does not
exist fails to compile). Each refusal is an ``InvalidDatabase`` naming the object and saying
what to change.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Self

from builder.sqlite_check.header import InvalidDatabase
from builder.sqlite_check.limits import CheckLimits, TimedOut

#: Virtual-table modules a gallery may use: the ones built into SQLite and Pyodide's SQLite.
ALLOWED_MODULES = frozenset({"fts3", "fts4", "fts5", "rtree", "rtree_i32"})
#: Functions refused by name wherever the schema calls them, whatever SQLite would say.
REFUSED_FUNCTIONS = frozenset({"load_extension"})

#: ``(type, name, tbl_name, sql)`` rows of ``sqlite_master``.
Schema = list[tuple[str, str, str, str | None]]

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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _refusal(kind: str, name: str, exc: sqlite3.Error, column: str | None = None) -> InvalidDatabase:
    """A message for ``exc``, raised while compiling ``kind`` (table/view/trigger) ``name``."""
    reason = str(exc)
    if reason == "interrupted":
        raise TimedOut from exc
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


def objects(
    schema: Schema, kind: str, *, internal: bool = False
) -> Iterator[tuple[str, str, str | None]]:
    """``(name, tbl_name, sql)`` of the schema's objects of ``kind``; SQLite's own (``sqlite_*``) only if ``internal``."""
    for type_, name, tbl_name, sql in schema:
        if type_ == kind and (internal or not name.startswith("sqlite_")):
            yield name, tbl_name, sql


def check_schema(
    conn: sqlite3.Connection, schema: Schema, limits: CheckLimits, reopen: Callable[[], sqlite3.Connection]
) -> list[str]:
    """Refuse unknown modules, refused functions, wide tables and anything that does not compile.

    ``schema`` is ``sqlite_master``'s rows. Returns warnings for the publisher: views that only
    compile with ``trusted_schema`` on (a view over a full-text table, for instance), which the
    gallery's Datasette may refuse. ``reopen`` opens a second hardened connection to the same
    file, for that second try. Raises ``InvalidDatabase``; ``TimedOut`` past the deadline and
    ``MemoryError`` when SQLite runs out of memory.
    """
    _refuse_by_name(conn, schema)
    source = _Source()
    conn.set_authorizer(source.authorizer)
    _check_tables(conn, schema, limits, source)
    with _TrustingCompiler(reopen, source) as trusting:
        notes = _check_views(conn, schema, source, trusting)
        _check_triggers(conn, schema, source, trusting)
    conn.set_authorizer(None)
    return notes


def _refuse_by_name(conn: sqlite3.Connection, schema: Schema) -> None:
    """Refuse calls of load_extension and virtual tables of modules outside ``ALLOWED_MODULES``, read from the SQL."""
    # Refused by name first: the message must say load_extension even where SQLite would say "unsafe use".
    for type_, name, _tbl_name, sql in schema:
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


def _check_tables(conn: sqlite3.Connection, schema: Schema, limits: CheckLimits, source: _Source) -> None:
    """Compile every table (SQLite's own too) and refuse one wider than ``limits.max_columns``."""
    for name, _, _ in objects(schema, "table", internal=True):
        error = _compile(conn, f"SELECT * FROM {_quote(name)} LIMIT 0", source)
        if error is not None:
            raise _column_refusal(conn, name, error, source)
        columns = conn.execute(f"PRAGMA table_xinfo({_quote(name)})").fetchall()
        if len(columns) > limits.max_columns:
            raise InvalidDatabase(
                f"Table `{name}` has {len(columns):,} columns; Glasshouse accepts at most {limits.max_columns:,} "
                "per table. Split it into narrower tables, then upload again."
            )


class _TrustingCompiler:
    """The second try of what SQLite refuses only because trusted_schema is off.

    SQLite refuses a virtual table (of an allowed module) in a view or trigger while
    trusted_schema is off; ``retry`` compiles it again on a second connection with it on (opened
    at the first need, closed on leaving), still refusing load_extension (the authorizer).
    """

    def __init__(self, reopen: Callable[[], sqlite3.Connection], source: _Source) -> None:
        self._reopen = reopen
        self._source = source
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            self._conn.close()

    def retry(self, sql: str, error: sqlite3.Error) -> sqlite3.Error | None:
        """SQLite's error for ``sql`` with trusted_schema on, or ``None``; ``error`` itself if it is another refusal."""
        if not str(error).startswith("unsafe use of virtual table"):
            return error
        if self._conn is None:
            self._conn = self._reopen()
            self._conn.setconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA, True)
            self._conn.execute("PRAGMA trusted_schema = ON")
            self._conn.set_authorizer(self._source.authorizer)
        return _compile(self._conn, sql, self._source)


def _check_views(conn: sqlite3.Connection, schema: Schema, source: _Source, trusting: _TrustingCompiler) -> list[str]:
    """Compile every view; return a note for each that compiles only with trusted_schema on."""
    kinds = {name: type_ for type_, name, _, _ in schema}
    notes: list[str] = []
    for name, _, _ in objects(schema, "view", internal=True):
        sql = f"SELECT * FROM {_quote(name)} LIMIT 0"
        if (error := _compile(conn, sql, source)) is None:
            continue
        if (still := trusting.retry(sql, error)) is None:
            notes.append(
                f"View `{name}` reads a virtual table, which SQLite refuses inside views while its "
                "trusted_schema setting is off, as it is in the gallery: there the view may show an error "
                "instead of rows. The rest of the gallery is not affected."
            )
            continue
        culprit = source.name if source.name in kinds else name
        raise _refusal(kinds.get(culprit, "view"), culprit, still)
    return notes


def _check_triggers(conn: sqlite3.Connection, schema: Schema, source: _Source, trusting: _TrustingCompiler) -> None:
    """Compile every trigger, inside a statement of each kind that fires it (the only way SQLite compiles one)."""
    # Galleries are read-only, so no trigger ever runs there: trusted_schema does not matter.
    kinds = {name: type_ for type_, name, _, _ in schema}
    for target in sorted({tbl_name for _, tbl_name, _ in objects(schema, "trigger", internal=True)}):
        settable = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({_quote(target)})") if row[6] in (0, 1)]
        assignments = ", ".join(f"{_quote(column)} = {_quote(column)}" for column in settable) or "rowid = rowid"
        for statement in (
            f"INSERT INTO {_quote(target)} DEFAULT VALUES",
            f"UPDATE {_quote(target)} SET {assignments}",
            f"DELETE FROM {_quote(target)}",
        ):
            if (error := _compile(conn, statement, source)) is None:
                continue
            if (error := trusting.retry(statement, error)) is None:
                continue
            named = source.name if source.name is not None and kinds.get(source.name) == "trigger" else None
            culprit = named or _trigger_of(schema, target, error)
            raise _refusal("trigger", culprit, error)


def _without_comments(sql: str) -> str:
    """``sql`` with every comment replaced by a space (quoted strings and identifiers kept as they are)."""
    return _COMMENT_OR_QUOTED.sub(lambda match: match.group(1) or " ", sql)


def _trigger_of(schema: Schema, target: str, error: sqlite3.Error) -> str:
    """The trigger on ``target`` whose SQL names the function in ``error``, else the first one."""
    triggers = [(name, sql or "") for name, tbl_name, sql in objects(schema, "trigger") if tbl_name == target]
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
