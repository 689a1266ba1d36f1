"""Build-time compatibility check: does the bundle start in Pyodide and render pages?

``check_bundle(CompatRequest(...))`` runs ``node builder/runtime/node/compat_check.mjs`` in a subprocess.
The script does what the reader's browser does, with the same runtime core
(``builder/runtime/reader/js/core.mjs``): it boots Pyodide from the npm package with this build's ``pyodide-lock.json``,
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
is capped (``CompatRequest.max_old_space_mb``); running out of it raises ``CompatOutOfMemory``.

The check runs the publisher's bundle, and Python in Pyodide reaches all of Node
through its ``js`` module, so Node runs in a sandbox (``node_sandbox``): an empty
environment; Node's permission model reading only the runtime, this build's lock,
wheels and database, and writing only the check's outputs and scratch folder, with
no child processes, workers, addons or WASI; a preload
(``runtime/node/compat_sandbox.mjs``) that takes the network and signals away before
any Python runs; and, where Linux lets the worker's user make one, an empty
network namespace. A Node too old for that raises ``SandboxUnavailable``.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlencode

from builder import check_snapshots
from builder.runtime import (
    BUILTIN_PLUGINS,
    BYTECODE_MODULE,
    COMPAT_SCRIPT,
    RUNTIME_DIR,
    RUNTIME_MODULE,
    SANDBOX_PRELOAD,
)
from builder.sqlite_check import open_untrusted
from builder.url_map import URL_MAP

#: Oldest Node of each release line whose permission model has the January 2026 security fixes
#: (CVE-2025-55130, files outside ``--allow-fs-*`` reached through relative symlinks; CVE-2025-55132,
#: timestamps changed without write permission). Later major versions are accepted; the others
#: (below 20, and 21 and 23) are out of support and never got those fixes.
NODE_MINIMUM = {20: (20, 20, 0), 22: (22, 22, 0), 24: (24, 13, 0), 25: (25, 3, 0)}
#: ``unshare`` options that give Node a new, empty network namespace (only a loopback that is down),
#: inside a user namespace so that no privilege is needed where Linux allows unprivileged ones.
NETWORK_NAMESPACE_OPTIONS = ("--user", "--map-root-user", "--net")

logger = logging.getLogger(__name__)

#: Where every page's "Report" link points (builder/runtime/reader/glasshouse_report.py).
REPORT_PATH = URL_MAP.server.report
RESULT_PREFIX = "GLASSHOUSE_COMPAT_RESULT "
#: Longest config passed inline as one argument; Linux caps one argument at 128 KiB.
MAX_INLINE_CONFIG = 64 * 1024
#: The folder in the check's scratch folder where the script writes an import snapshot.
SNAPSHOT_OUT = "import-snapshot"
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


class SandboxUnavailable(RuntimeError):
    """This machine's Node cannot run the check in its sandbox (too old a release); ``args[0]`` says what to install.

    Not a ``CompatError``: the bundle is not at fault, the worker's setup is.
    """


class CompatOutOfMemory(CompatError):
    """Node reached its heap cap (``CompatRequest.max_old_space_mb``, in ``limit_mb``) during the check."""

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
    #: How Node was confined (``NodeSandbox.description``).
    sandbox: str = ""
    #: The import snapshot (``builder.check_snapshots``): ``"restored"`` (Pyodide's time is then the
    #: restore, and no packages were loaded), ``"made"``, ``"refused"`` (why is in the log) or ``""`` (none asked for).
    snapshot: str = ""

    def summary(self) -> str:
        """One build-log line, e.g. ``booted Pyodide in Node, rendered /, /db, /db/t in 9123 ms; sandbox: ...``."""
        paths = ", ".join(p.path + (f"?{p.query}" if p.query else "") for p in self.pages)
        sandbox = f"; sandbox: {self.sandbox}" if self.sandbox else ""
        booted = "restored Pyodide with Datasette imported from the import snapshot" if self.snapshot == "restored" else "booted Pyodide"
        return f"{booted} in Node, rendered {paths} in {self.total_ms} ms{sandbox}"

    def stages(self) -> str:
        """One build-log line of where the check's time went, e.g. ``Pyodide 4,100 ms, packages 900 ms, ...``.

        ``Datasette start`` includes writing the database into Pyodide's file system; each page's
        time is Datasette's answer in Node; the rest is mostly the bytecode zip and static files.
        """
        pages = ", ".join(f"{p.path}{f'?{p.query}' if p.query else ''} {p.ms:,} ms" for p in self.pages)
        rest = self.total_ms - self.pyodide_ms - self.packages_ms - self.start_ms - sum(p.ms for p in self.pages)
        python = (
            f"import snapshot restored {self.pyodide_ms:,} ms"
            if self.snapshot == "restored"
            else f"Pyodide {self.pyodide_ms:,} ms, packages {self.packages_ms:,} ms"
            + (f" (import snapshot {self.snapshot})" if self.snapshot else "")
        )
        return (
            f"{python}, "
            f"Datasette start {self.start_ms:,} ms, pages: {pages}; the rest (bytecode, static files) {rest:,} ms"
        )


@dataclass(frozen=True)
class NodeSandbox:
    """How one run of Node is confined.

    The command is ``[*prefix, node, *node_options, script, ...]`` run with exactly ``env``;
    ``description`` names the layers for the build log.
    """

    prefix: list[str]
    node_options: list[str]
    env: dict[str, str]
    description: str


def parse_node_version(text: str) -> tuple[int, int, int]:
    """``(major, minor, patch)`` from ``node --version``'s output (``"v20.20.2"``); ``ValueError`` if it is not one."""
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\S*", text.strip())
    if match is None:
        raise ValueError(f"not a Node.js version: {text.strip()!r}")
    return int(match[1]), int(match[2]), int(match[3])


@functools.lru_cache(maxsize=8)
def _node_version(node_path: str, mtime_ns: int) -> tuple[int, int, int]:
    proc = subprocess.run([node_path, "--version"], capture_output=True, text=True, check=True, env={}, timeout=60)
    return parse_node_version(proc.stdout)


def node_version(node_path: str) -> tuple[int, int, int]:
    """The version of the Node.js at ``node_path`` (asked once per file: cached while its mtime stays)."""
    return _node_version(node_path, os.stat(node_path).st_mtime_ns)


def permission_options(version: tuple[int, int, int]) -> list[str]:
    """Node's options that switch its permission model on, for Node ``version``.

    ``--permission`` where it is stable (22.13+, 23.5+; 24 dropped the old name), else
    ``--experimental-permission`` with its start-up warning silenced. Raises
    ``SandboxUnavailable`` for a Node older than ``NODE_MINIMUM`` allows.
    """
    minimum = NODE_MINIMUM.get(version[0])
    if not (version[0] > max(NODE_MINIMUM) or (minimum is not None and version >= minimum)):
        allowed = ", ".join(f"{'.'.join(map(str, v))}+" for v in NODE_MINIMUM.values())
        raise SandboxUnavailable(
            f"Node.js {'.'.join(map(str, version))} cannot sandbox the build's compatibility check: it needs "
            f"Node's permission model with its January 2026 security fixes ({allowed}, or {max(NODE_MINIMUM) + 1} "
            "and later). Install a newer Node.js on the build workers (deploy/install-node.sh says how)."
        )
    stable = version >= (23, 5, 0) or (22, 13, 0) <= version < (23, 0, 0)
    return ["--permission"] if stable else ["--experimental-permission", "--disable-warning=ExperimentalWarning"]


@functools.lru_cache(maxsize=8)
def network_namespace(node_path: str) -> tuple[list[str], str]:
    """``(prefix, problem)``: the command prefix that runs ``node_path`` in a new, empty network namespace.

    The prefix is ``[unshare, "--user", "--map-root-user", "--net", "--"]`` (util-linux) if
    running ``node --version`` that way works for this user here, and ``problem`` is ``""``;
    otherwise the prefix is ``[]`` and ``problem`` says why (no ``unshare``, or the kernel
    refuses unprivileged user namespaces, as Ubuntu's AppArmor policy does by default).
    Asked once per process.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return [], "util-linux's unshare is not on PATH"
    prefix = [unshare, *NETWORK_NAMESPACE_OPTIONS, "--"]
    try:
        proc = subprocess.run(
            [*prefix, node_path, "--version"], check=False, capture_output=True, text=True, env={}, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"unshare failed: {exc}"
    if proc.returncode != 0:
        return [], (proc.stderr.strip().splitlines() or [f"unshare exited with code {proc.returncode}"])[-1]
    return prefix, ""


def _outermost(paths: list[Path]) -> list[Path]:
    """``paths`` without repeats and without those inside another one that is a folder.

    Node 20's permission model stops granting a folder itself (``stat``, as Pyodide does on its
    package folder) once a path inside it is granted too.
    """
    unique = list(dict.fromkeys(paths))
    folders = [path for path in unique if path.is_dir()]
    return [path for path in unique if not any(path != folder and path.is_relative_to(folder) for folder in folders)]


def node_sandbox(node_path: str, *, read: list[Path], write: list[Path], scratch: Path) -> NodeSandbox:
    """The sandbox of one check: Node may read only ``read`` and write only ``write`` (files or folders).

    Folders in either list must exist before Node starts (Node's permission model treats a
    path that is no folder at start-up as one file). The environment holds only ``TMPDIR``
    (``scratch``). Raises ``SandboxUnavailable`` if Node is too old (``permission_options``);
    runs without a network namespace, with a warning, where the kernel gives none.
    """
    version = node_version(node_path)
    options = permission_options(version)
    options += [f"--allow-fs-read={path}" for path in _outermost(read)]
    options += [f"--allow-fs-write={path}" for path in _outermost(write)]
    options.append(f"--import={SANDBOX_PRELOAD.resolve().as_uri()}")
    prefix, problem = network_namespace(node_path)
    layers = [f"Node {'.'.join(map(str, version))} permission model", "empty environment", "no-network preload"]
    if prefix:
        layers.append("empty network namespace")
    else:
        logger.warning(
            "The build's Node runs without a network namespace (%s); only its preload blocks the network.", problem
        )
        layers.append(f"no network namespace ({problem})")
    return NodeSandbox(prefix=prefix, node_options=options, env={"TMPDIR": str(scratch)}, description=", ".join(layers))


def stage_wheels(lock_file: Path, cache_dir: Path, folder: Path) -> None:
    """Put the wheels ``lock_file`` names (``file_name`` relative to ``cache_dir``) at the same names in ``folder``.

    Hard links where the file system allows, else copies: Node then reads this build's wheels
    and no other file of the shared cache. ``folder`` must stay read-only for Node (a hard
    link is the cache's own file). Names that are URLs, leave ``cache_dir`` or are missing
    are skipped; Pyodide then reports those packages as not loaded.
    """
    cache = cache_dir.resolve()
    for package in json.loads(lock_file.read_text()).get("packages", {}).values():
        name = package.get("file_name", "")
        source = (cache / name).resolve()
        if not name or "://" in name or not source.is_relative_to(cache) or not source.is_file():
            continue
        target = folder / source.relative_to(cache)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


def checked_static_files(urls: object, static_out: Path) -> list[str]:
    """``urls`` as the check reported them, if each is a regular file Node wrote under ``static_out``.

    The report comes from a process that ran the publisher's bundle, so it is checked like
    any input: each must be a ``/-/static...`` URL path without ``.``/``..`` segments naming
    a regular file (no symlink) inside ``static_out``. Raises ``CompatError`` otherwise.
    """
    root = static_out.resolve()
    if not isinstance(urls, list):
        raise CompatError("the check's report of static files is not a list")
    for url in urls:
        parts = url.split("/")[1:] if isinstance(url, str) and url.startswith("/-/static") else []
        path = root.joinpath(*parts) if parts else root
        if (
            not parts
            or any(part in ("", ".", "..") for part in parts)
            or path.is_symlink()
            or not path.is_file()
            or (not path.resolve().is_relative_to(root))
        ):
            raise CompatError(f"the check reported a static file that it did not write under its folder: {url!r}")
    return list(urls)


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
    """Return the first table in ``sqlite_master`` order (SQLite's internal tables skipped), or None.

    Opens the copy as the build's database check does (``builder.sqlite_check.open_untrusted``).
    """
    conn = open_untrusted(database)
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


@dataclass(frozen=True)
class CompatRequest:
    """What ``check_bundle`` boots and renders; paths are local.

    ``lock_file``'s ``file_name`` entries are ``<sha256>/<file>.whl`` relative to ``cache_dir``;
    ``packages`` are loaded with ``loadPackage`` (``datasette`` and the plugins); ``database`` is
    written at ``/data/<database_name>.db``. ``settings`` are Datasette's (``None``:
    ``DEFAULT_SETTINGS``); ``metadata`` the bundle's. ``extra_pages`` are ``{"path", "query"?,
    "contains"?: [markers], "lacks"?: [markers], "footer"?: [markers inside Datasette's
    footer]}``, rendered after the default pages (``default_pages``). ``node`` is the Node.js
    command; ``timeout`` the seconds the whole check may take.

    With ``bytecode_out``, a passing check also writes there a zip of Python 3.14 bytecode
    (``__pycache__/*.pyc``, unchecked-hash) of every site-packages module the pages imported,
    paths relative to site-packages; the Service Worker unpacks it so a reader's Pyodide imports
    Datasette without compiling it. With ``static_out``, it writes there every static file
    Datasette and the plugins serve, each at its URL path (``static_out / "-/static/app.css"``),
    with the bytes Datasette answers. With ``stdlib`` (``builder.stdlib.compiled_stdlib``'s zip),
    Pyodide boots from that standard library, as the bundle's readers do; without it, from the
    runtime's own.

    ``inspect`` (``{"size", "sha256", "table_counts"}``, as the reader's runtime gets it;
    ``None``: Datasette counts the tables itself) becomes Datasette's inspect data.

    ``max_old_space_mb`` caps Node's V8 heap (``--max-old-space-size``, MB; ``None``: Node's
    default, about a quarter of the machine's memory). The database and Pyodide's wasm memory
    are ArrayBuffers outside that heap, so the cap bounds the JavaScript objects of Pyodide and
    Datasette's pages, not the database's size. ``temp_dir`` is where the check's scratch folder
    goes (default: the system's); Node gets it as ``TMPDIR`` too.

    With ``import_snapshots`` (a folder; builds use ``cache_dir / check_snapshots.FOLDER``), the
    check restores Python with Datasette and the plugins imported from an import snapshot there.
    When no earlier check of the same runtime, lock and modules left one, a run of its own makes it
    first, with the snapshot's bytecode and static files: on ``NEUTRAL_TABLE`` in a database of
    the build's, with Datasette's default settings and no metadata, so nothing of this publisher's
    reaches the process whose outputs later builds reuse (``builder.check_snapshots``). If that
    run fails, the check boots normally; if Python refused the snapshot there, that is recorded and
    later checks of the set boot normally at once. If a check that restored a snapshot fails, it runs again
    without: when that passes, the snapshot is deleted and that report returned.
    """

    runtime_dir: Path
    cache_dir: Path
    lock_file: Path
    packages: tuple[str, ...]
    database: Path
    database_name: str
    node: str = "node"
    timeout: float = 120
    settings: dict | None = None
    metadata: dict | None = None
    extra_pages: tuple[dict, ...] = ()
    bytecode_out: Path | None = None
    static_out: Path | None = None
    max_old_space_mb: int | None = None
    temp_dir: Path | None = None
    stdlib: Path | None = None
    import_snapshots: Path | None = None
    inspect: dict | None = None


def check_bundle(request: CompatRequest) -> CompatReport:
    """Boot the bundle of ``request`` in Node and render its pages; return the report or raise ``CompatError``.

    Raises ``FileNotFoundError`` if ``request.node`` is not on PATH or a runtime file is
    missing, ``CompatError`` if the bundle fails (including a timeout after
    ``request.timeout`` seconds), ``CompatOutOfMemory`` (a ``CompatError``) when Node reaches
    ``request.max_old_space_mb``. A passing check's report lists the static files it wrote
    (``CompatReport.static_files``).

    Node runs in ``node_sandbox``: it may read the runtime folders, ``lock_file``, the wheels
    it names, ``database`` and ``stdlib``, and write only ``bytecode_out``, ``static_out`` (created
    first) and its scratch folder; its environment is empty but for ``TMPDIR``. Raises
    ``SandboxUnavailable`` if ``node`` is too old for that (``NODE_MINIMUM``).
    """
    node_path = _node_and_files(request)
    folder = request.import_snapshots
    if folder is None:
        return _check(request, node_path)
    key = check_snapshots.snapshot_key(
        runtime_dir=request.runtime_dir, lock_file=request.lock_file, packages=request.packages,
        stdlib=request.stdlib, runtime_module=RUNTIME_MODULE, node_version=node_version(node_path),
    )  # fmt: skip
    restore = check_snapshots.find(folder, key) or _make_import_snapshot(request, node_path, key)
    if restore is None:
        return _check(request, node_path)
    try:
        return _check(request, node_path, restore=restore)
    except CompatError as failure:
        # The snapshot may be at fault: the normal boot decides. If it passes, the snapshot goes.
        report = _check(request, node_path)
        check_snapshots.discard(folder, key)
        logger.warning("The check's import snapshot %s failed where a normal boot passed (%s); deleted it.", key, failure.args[0])
        return report


#: The one table of the database the import snapshot's own run renders: ``(name, rows)``.
NEUTRAL_TABLE = ("places", (("Lisbon", 38.72, 545_796), ("Nairobi", -1.29, 4_397_073), ("Quito", -0.18, 2_011_388)))
#: That database's name (and file name, with ``.db``).
NEUTRAL_DATABASE = "glasshouse"


def _make_import_snapshot(request: CompatRequest, node_path: str, key: str) -> Path | None:
    """Make import snapshot ``key`` (with its bytecode and static files) in a check of its own that
    sees nothing of the publisher's: ``request``'s runtime, lock, packages and standard library, on
    ``NEUTRAL_TABLE``, default settings, no metadata, no extra pages. Returns the stored snapshot's
    folder, or ``None`` (the run failed, or made none; why is logged at INFO). Raises what
    ``_check`` raises but ``CompatError``.

    Later checks of the same set restore it and copy its bytecode and static files into their
    bundles: made during a publisher's own check, a check that the publisher's database subverted
    could have left them for every other gallery with the same plugins.
    """
    assert request.import_snapshots is not None
    if check_snapshots.refused(request.import_snapshots, key) is not None:
        return None
    with tempfile.TemporaryDirectory(prefix="glasshouse-snapshot-run-", dir=request.temp_dir) as tmp:
        scratch = Path(tmp).resolve()
        database = scratch / f"{NEUTRAL_DATABASE}.db"
        name, rows = NEUTRAL_TABLE
        with sqlite3.connect(database) as connection:
            connection.execute(f"create table {name} (id integer primary key, name text not null, latitude real, population integer)")
            connection.executemany(f"insert into {name} (name, latitude, population) values (?, ?, ?)", rows)
        connection.close()
        neutral = replace(
            request, database=database, database_name=NEUTRAL_DATABASE, settings=None, metadata=None, extra_pages=(),
            inspect=None, bytecode_out=scratch / "bytecode.zip", static_out=scratch / "static",
        )  # fmt: skip
        try:
            made = _check(neutral, node_path, key=key)
        except CompatError as exc:
            logger.info("The import snapshot's own check failed (%s); this check boots normally.", exc.args[0])
            return None
    logger.info("Import snapshot %s: %s in its own check (%s).", key, made.snapshot or "none", made.stages())
    if made.snapshot == "refused":
        # Python refused it (prepare_import_snapshot: a native module, a pending task, ...): it would
        # every time, so later checks of the set boot normally at once.
        reason = next((line for line in reversed(made.log.splitlines()) if line.startswith("No import snapshot")), "")
        check_snapshots.refuse(request.import_snapshots, key, reason or "refused")
    return check_snapshots.find(request.import_snapshots, key)


def _check(request: CompatRequest, node_path: str, *, key: str | None = None, restore: Path | None = None) -> CompatReport:
    """One run of the check: from the import snapshot in ``restore`` (whose kept bytecode and static
    files, if any, are copied to ``bytecode_out`` and ``static_out`` instead of being made again), or
    a normal boot that, with ``key``, stores the import snapshot it made, with those outputs
    (``builder.check_snapshots``), once the check passed."""
    try:
        with tempfile.TemporaryDirectory(prefix="glasshouse-compat-", dir=request.temp_dir) as tmp:
            kept = check_snapshots.outputs(restore) if restore and request.bytecode_out and request.static_out else None
            proc, sandbox = _run_node(
                request, node_path, Path(tmp).resolve(), restore=restore, make=key is not None, outputs=kept is None
            )
            report = _report(request, proc, sandbox)
            if kept is not None and request.bytecode_out and request.static_out:
                shutil.copyfile(kept.bytecode, request.bytecode_out)
                shutil.copytree(kept.static, request.static_out, dirs_exist_ok=True)
                report = replace(report, static_files=checked_static_files(kept.static_urls, request.static_out))
            if key is not None and request.import_snapshots and report.snapshot == "made":
                made = (
                    check_snapshots.Outputs(request.bytecode_out, request.static_out, report.static_files)
                    if request.bytecode_out and request.static_out
                    else None
                )
                check_snapshots.store(request.import_snapshots, key, Path(tmp).resolve() / "scratch" / SNAPSHOT_OUT, made)
    except subprocess.TimeoutExpired as exc:
        output = "\n".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part
            for part in (exc.stdout, exc.stderr)
            if part
        )
        raise CompatError(f"Pyodide did not start and render the pages within {request.timeout:g} s", output) from exc
    return report


def _node_and_files(request: CompatRequest) -> str:
    """The path of ``request.node``; raises ``FileNotFoundError`` if it or a file the check reads is missing."""
    node_path = shutil.which(request.node)
    if node_path is None:
        raise FileNotFoundError(
            f"Node.js ({request.node!r}) is not on PATH; the build's compatibility check needs it (apt-get install nodejs)."
        )
    for required in (
        request.runtime_dir / "pyodide.mjs",
        request.lock_file,
        request.database,
        COMPAT_SCRIPT,
        RUNTIME_MODULE,
        *BUILTIN_PLUGINS.values(),
    ):
        if not required.is_file():
            raise FileNotFoundError(f"Compatibility check: {required} is missing.")
    return node_path


def _config(request: CompatRequest, wheels: Path) -> dict[str, object]:
    """The check script's configuration (``compat_check.mjs``), with this build's wheels staged in ``wheels``."""
    return {
        "runtimeDir": str(request.runtime_dir.resolve()),
        "lockFile": str(request.lock_file.resolve()),
        "packages": list(request.packages),
        "database": str(request.database.resolve()),
        "databasePath": f"/data/{request.database_name}.db",
        "runtimeModule": str(RUNTIME_MODULE),
        "pluginModules": [{"name": name, "path": str(path)} for name, path in BUILTIN_PLUGINS.items()],
        "settings": DEFAULT_SETTINGS if request.settings is None else request.settings,
        "metadata": request.metadata or {},
        "inspect": request.inspect,
        "pages": default_pages(request.database, request.database_name) + list(request.extra_pages),
        "stdlib": str(request.stdlib.resolve()) if request.stdlib else "",
        "bytecodeModule": str(BYTECODE_MODULE),
        "bytecodeOut": str(request.bytecode_out.resolve()) if request.bytecode_out else "",
        "staticOut": str(request.static_out.resolve()) if request.static_out else "",
        "packageBaseUrl": f"{wheels}/",
    }


def _run_node(
    request: CompatRequest, node_path: str, tmp: Path, *, restore: Path | None = None, make: bool = False, outputs: bool = True
) -> tuple[subprocess.CompletedProcess[str], NodeSandbox]:
    """Run the check script in its sandbox with scratch files under ``tmp``; return Node's process and the sandbox.

    With ``restore`` (a snapshot's folder, which Node may then read), Python comes from that import
    snapshot; with ``make``, the script writes one to ``tmp/scratch/SNAPSHOT_OUT`` (if Python refuses
    it, the script stops there and passes, with no pages). Without ``outputs``,
    it writes no bytecode or static files (the caller has them).

    Raises ``subprocess.TimeoutExpired`` after ``request.timeout`` seconds.
    """
    # scratch/: Node's TMPDIR, writable; wheels/: this build's wheels, read-only for Node.
    scratch, wheels = tmp / "scratch", tmp / "wheels"
    scratch.mkdir()
    wheels.mkdir()
    stage_wheels(request.lock_file, request.cache_dir, wheels)
    config = _config(request, wheels)
    config["snapshotIn"] = str(restore) if restore else ""
    config["snapshotOut"] = str(scratch / SNAPSHOT_OUT) if make and not restore else ""
    if not outputs:
        config["bytecodeOut"] = config["staticOut"] = ""
    argument = config_text = json.dumps(config)
    if len(config_text.encode()) > MAX_INLINE_CONFIG:
        (scratch / "config.json").write_text(config_text)
        argument = "@" + str(scratch / "config.json")
    if request.static_out:
        request.static_out.mkdir(parents=True, exist_ok=True)
    sandbox = node_sandbox(
        node_path,
        read=[
            RUNTIME_DIR.resolve(), RUNTIME_MODULE.resolve(), *(p.resolve() for p in BUILTIN_PLUGINS.values()),
            request.runtime_dir.resolve(), request.lock_file.resolve(), wheels, request.database.resolve(), scratch,
            *([request.stdlib.resolve()] if request.stdlib else []), *([restore.resolve()] if restore else []),
        ],
        write=[scratch, *(path.resolve() for path in (request.bytecode_out, request.static_out) if path)],
        scratch=scratch,
    )  # fmt: skip
    heap_cap = [f"--max-old-space-size={request.max_old_space_mb}"] if request.max_old_space_mb else []
    proc = subprocess.run(
        [*sandbox.prefix, node_path, *sandbox.node_options, *heap_cap, str(COMPAT_SCRIPT), argument],
        check=False,
        capture_output=True,
        text=True,
        timeout=request.timeout,
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        cwd=scratch,
    )
    return proc, sandbox


def _report(request: CompatRequest, proc: subprocess.CompletedProcess[str], sandbox: NodeSandbox) -> CompatReport:
    """The report in the check script's result line on Node's stdout; raises ``CompatError`` for a failed check."""
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            try:
                result = json.loads(line[len(RESULT_PREFIX) :])
            except ValueError as exc:  # the plugins share Node's stdout: one may print anything
                raise CompatError(f"the check's result line is not JSON: {exc}", proc.stdout[-4000:]) from exc
    if result is None:
        text = "\n".join(part for part in (proc.stdout, proc.stderr) if part.strip())
        if any(marker in proc.stderr for marker in OUT_OF_MEMORY_MARKERS):
            raise CompatOutOfMemory(request.max_old_space_mb, text)
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"node exited with code {proc.returncode}"
        raise CompatError(f"the check script failed: {reason}", text)
    log = result["log"]
    if proc.stderr.strip():
        log = f"{log}\n--- node stderr:\n{proc.stderr}"
    pages = [
        PageResult(
            path=p["path"],
            query=p["query"],
            status=p["status"],
            ms=p["ms"],
            bytes=p["bytes"],
            content_type=p["content_type"],
            problems=tuple(p["problems"]),
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
        static_files=checked_static_files(result.get("static", []), request.static_out) if request.static_out else [],
        sandbox=sandbox.description,
        snapshot=timings.get("snapshot", ""),
    )
