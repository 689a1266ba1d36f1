"""Build-time compatibility check: does the bundle start in Pyodide and render pages?

``check_bundle`` runs ``node builder/runtime/compat_check.mjs`` in a subprocess.
The script does what the reader's browser does, with the same runtime core
(``builder/runtime/js/core.mjs``): it boots Pyodide from the npm package with this build's ``pyodide-lock.json``,
loads Datasette and the plugins from the wheel cache, writes the database,
imports ``glasshouse_runtime.py`` and calls its ``start`` (which registers the
built-in plugins, ``BUILTIN_PLUGINS``) and ``handle``. It renders the home page,
the database page and the first table's page; each must answer HTTP 200 without
a Python traceback, with the page's "Report" link in Datasette's footer. Callers
may add pages with markers their content must contain (the catalog's plugin
checks do).

A failure raises ``CompatError``: ``args[0]`` is a short reason (the last line
of the Python traceback, or the page that failed), ``.log`` the full text
(tracebacks, Pyodide's messages, the start of a failing page's body). Node's heap
is capped (``max_old_space_mb``); running out of it raises ``CompatOutOfMemory``.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

RUNTIME_DIR = Path(__file__).parent / "runtime"
SCRIPT = RUNTIME_DIR / "compat_check.mjs"
RUNTIME_MODULE = RUNTIME_DIR / "glasshouse_runtime.py"
#: Glasshouse's built-in Datasette plugins, in every bundle: module name -> source file.
BUILTIN_PLUGINS = {"glasshouse_report": RUNTIME_DIR / "glasshouse_report.py"}
#: Where every page's "Report" link points (builder/runtime/glasshouse_report.py).
REPORT_PATH = "/_report"
RESULT_PREFIX = "GLASSHOUSE_COMPAT_RESULT "
#: Longest config passed inline as one argument; Linux caps one argument at 128 KiB.
MAX_INLINE_CONFIG = 64 * 1024
#: What V8 prints on stderr when the heap cap (``--max-old-space-size``) is reached.
OUT_OF_MEMORY_MARKERS = ("JavaScript heap out of memory", "Reached heap limit")
#: Settings used when the caller passes none: the bundle's (builder.bundle.DATASETTE_SETTINGS).
DEFAULT_SETTINGS = {"num_sql_threads": 0, "sql_time_limit_ms": 1000}

#: Bytes Datasette leaves unescaped in a tilde-encoded URL component (datasette.utils.tilde_encode).
_TILDE_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True)
class PageResult:
    """One rendered page: ``path`` as requested, HTTP ``status``, time in ms, body size in bytes.

    ``problems`` is empty for a page that passed (HTTP 200, no traceback, markers as required).
    """

    path: str
    query: str
    status: int
    ms: int
    bytes: int
    content_type: str
    problems: tuple[str, ...] = ()


class CompatError(Exception):
    """The bundle did not start or a page failed.

    ``args[0]``: short reason; ``log``: full text (tracebacks, Pyodide's messages,
    failing pages' bodies); ``pages``: the pages rendered before the failure, or
    all of them if Datasette started (those with ``problems`` failed).
    """

    def __init__(self, message: str, log: str = "", pages: list[PageResult] | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.pages = pages or []


class CompatOutOfMemory(CompatError):
    """Node reached its heap cap (``check_bundle``'s ``max_old_space_mb``, in ``limit_mb``) during the check."""

    def __init__(self, limit_mb: int | None, log: str = "") -> None:
        cap = f" (Node's heap is capped at {limit_mb} MB)" if limit_mb else ""
        super().__init__(f"ran out of memory in the compatibility check{cap}", log)
        self.limit_mb = limit_mb


@dataclass(frozen=True)
class CompatReport:
    """What a passing check saw. Timings are in ms: Pyodide boot, package load, Datasette start, total."""

    pages: list[PageResult]
    pyodide_ms: int
    packages_ms: int
    start_ms: int
    total_ms: int
    log: str = field(default="", repr=False)
    #: URL paths of the static files written to ``static_out`` (``/-/static/app.css``, ...).
    static_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One build-log line, e.g. ``booted Pyodide in Node, rendered /, /db, /db/t in 9123 ms``."""
        paths = ", ".join(p.path + (f"?{p.query}" if p.query else "") for p in self.pages)
        return f"booted Pyodide in Node, rendered {paths} in {self.total_ms} ms"


def tilde_encode(value: str) -> str:
    """Encode a database or table name for a Datasette URL path, as ``datasette.utils.tilde_encode`` does."""
    out = []
    for byte in value.encode("utf-8"):
        if byte in _TILDE_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"~{byte:02X}")
    return "".join(out)


def first_table(database: Path) -> str | None:
    """Return the first table in ``sqlite_master`` order (SQLite's internal tables skipped), or None."""
    conn = sqlite3.connect(f"file:{database.resolve()}?mode=ro&immutable=1", uri=True)
    try:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"
            " ORDER BY rowid LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def report_link(path: str) -> str:
    """The start of the "Report" link the footer of the page at ``path`` must hold.

    ``'<a href="/_report?url=%2Fdb%2Ft"'`` for ``/db/t``: the page's path, form-encoded.
    """
    return f'<a href="{REPORT_PATH}?{html.escape(urlencode({"url": path}))}"'


def default_pages(database: Path, database_name: str) -> list[dict]:
    """The pages every bundle must render: ``/``, ``/<db>`` and ``/<db>/<first table>`` if there is one.

    Each must show its "Report" link in Datasette's footer (``footer``: markers that
    must appear inside ``<footer class="ft">``).
    """
    db = tilde_encode(database_name)
    paths = ["/", f"/{db}"]
    table = first_table(database)
    if table is not None:
        paths.append(f"/{db}/{tilde_encode(table)}")
    return [{"path": path, "footer": [report_link(path)]} for path in paths]


def check_bundle(
    *,
    runtime_dir: Path,
    cache_dir: Path,
    lock_file: Path,
    packages: list[str],
    database: Path,
    database_name: str,
    node: str = "node",
    timeout: float = 120,
    settings: dict | None = None,
    metadata: dict | None = None,
    extra_pages: list[dict] | None = None,
    bytecode_out: Path | None = None,
    static_out: Path | None = None,
    max_old_space_mb: int | None = None,
    temp_dir: Path | None = None,
) -> CompatReport:
    """Boot the bundle in Node and render its pages; return the report or raise ``CompatError``.

    ``lock_file``'s ``file_name`` entries are ``<sha256>/<file>.whl`` relative to
    ``cache_dir``. ``packages`` are loaded with ``loadPackage`` (``datasette``
    and the plugins). ``extra_pages`` are ``{"path", "query"?, "contains"?:
    [markers], "lacks"?: [markers], "footer"?: [markers inside Datasette's footer]}``
    rendered after the default pages. Raises ``FileNotFoundError``
    if ``node`` is not on PATH or a runtime file is missing, ``CompatError`` if
    the bundle fails (including a timeout after ``timeout`` seconds).

    With ``bytecode_out``, a passing check also writes there a zip of Python 3.14
    bytecode (``__pycache__/*.pyc``, unchecked-hash) of every site-packages module
    the pages imported, paths relative to site-packages; the Service Worker
    unpacks it so a reader's Pyodide imports Datasette without compiling it.

    With ``static_out``, a passing check also writes there every static file
    Datasette and the plugins serve, each at its URL path (``static_out /
    "-/static/app.css"``), with the bytes Datasette answers; their URL paths are
    ``CompatReport.static_files``.

    ``max_old_space_mb`` caps Node's V8 heap (``--max-old-space-size``, MB; ``None``: Node's
    default, about a quarter of the machine's memory); reaching it raises ``CompatOutOfMemory``.
    The database and Pyodide's wasm memory are ArrayBuffers outside that heap, so the cap bounds
    the JavaScript objects of Pyodide and Datasette's pages, not the database's size.
    ``temp_dir`` is where the check's scratch folder goes (default: the system's); Node gets it
    as ``TMPDIR`` too.
    """
    node_path = shutil.which(node)
    if node_path is None:
        raise FileNotFoundError(
            f"Node.js ({node!r}) is not on PATH; the build's compatibility check needs it (apt-get install nodejs)."
        )
    for required in (runtime_dir / "pyodide.mjs", lock_file, database, SCRIPT, RUNTIME_MODULE, *BUILTIN_PLUGINS.values()):
        if not required.is_file():
            raise FileNotFoundError(f"Compatibility check: {required} is missing.")
    config = {
        "runtimeDir": str(runtime_dir.resolve()),
        "lockFile": str(lock_file.resolve()),
        "packageBaseUrl": str(cache_dir.resolve()) + "/",
        "packages": list(packages),
        "database": str(database.resolve()),
        "databasePath": f"/data/{database_name}.db",
        "runtimeModule": str(RUNTIME_MODULE),
        "pluginModules": [{"name": name, "path": str(path)} for name, path in BUILTIN_PLUGINS.items()],
        "settings": DEFAULT_SETTINGS if settings is None else settings,
        "metadata": metadata or {},
        "pages": default_pages(database, database_name) + list(extra_pages or []),
        "bytecodeOut": str(bytecode_out.resolve()) if bytecode_out else "",
        "staticOut": str(static_out.resolve()) if static_out else "",
    }
    config_text = json.dumps(config)
    heap_cap = [f"--max-old-space-size={max_old_space_mb}"] if max_old_space_mb else []
    try:
        with tempfile.TemporaryDirectory(prefix="glasshouse-compat-", dir=temp_dir) as tmp:
            argument = config_text
            if len(config_text.encode()) > MAX_INLINE_CONFIG:
                (Path(tmp) / "config.json").write_text(config_text)
                argument = "@" + str(Path(tmp) / "config.json")
            proc = subprocess.run(
                [node_path, *heap_cap, str(SCRIPT), argument],
                check=False,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "TMPDIR": tmp},
            )
    except subprocess.TimeoutExpired as exc:
        output = "\n".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part
            for part in (exc.stdout, exc.stderr)
            if part
        )
        raise CompatError(f"Pyodide did not start and render the pages within {timeout:g} s", output) from exc
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
    if result is None:
        text = "\n".join(part for part in (proc.stdout, proc.stderr) if part.strip())
        if any(marker in proc.stderr for marker in OUT_OF_MEMORY_MARKERS):
            raise CompatOutOfMemory(max_old_space_mb, text)
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"node exited with code {proc.returncode}"
        raise CompatError(f"the check script failed: {reason}", text)
    log = result["log"]
    if proc.stderr.strip():
        log = f"{log}\n--- node stderr:\n{proc.stderr}"
    pages = [
        PageResult(
            path=p["path"], query=p["query"], status=p["status"], ms=p["ms"], bytes=p["bytes"],
            content_type=p["content_type"], problems=tuple(p["problems"]),
        )
        for p in result["pages"]
    ]
    if not result["ok"]:
        raise CompatError(result["reason"], log, pages)
    timings = result["timings"]
    return CompatReport(
        pages=pages,
        pyodide_ms=timings["pyodide_ms"],
        packages_ms=timings["packages_ms"],
        start_ms=timings["start_ms"],
        total_ms=timings["total_ms"],
        log=log,
        static_files=list(result.get("static", [])),
    )
