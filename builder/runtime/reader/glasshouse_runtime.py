"""Runs inside Pyodide, in the reader's Service Worker or worker mode's Worker: Datasette as an ASGI app.

The runtime core (js/core.mjs) calls ``start(config)`` once per worker lifetime and then
``handle(method, url_path, query_string, headers, body)`` for every request. No
sockets and no threads: SQL runs on Pyodide's event loop (``num_sql_threads=0``).
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote, unquote

# Datasette and its ASGI app once ``start`` ran (Any: Datasette exists only inside Pyodide).
_app: Any = None
_datasette: Any = None
#: Keys that Datasette 1.0 reads from its configuration rather than its metadata
#: (docs.datasette.io/en/latest/configuration.html); 0.65 reads everything from metadata.
_CONFIG_KEYS = {"plugins", "queries"}
_TABLE_CONFIG_KEYS = {
    "sort", "sort_desc", "size", "sortable_columns", "label_column", "facets",
    "fts_table", "fts_pk", "searchmode", "hidden", "plugins",
}  # fmt: skip


def split_for_datasette_1(metadata: dict) -> tuple[dict, dict]:
    """Split 0.65-style metadata into Datasette 1.0's ``(config, metadata)`` pair.

    Plugin settings, canned queries and table options go to the configuration;
    titles, descriptions, licenses and sources stay metadata.
    """
    config: dict = {}
    meta = {k: v for k, v in metadata.items() if k not in ("plugins", "databases")}
    if "plugins" in metadata:
        config["plugins"] = metadata["plugins"]
    for db_name, db in metadata.get("databases", {}).items():
        db_config = {k: v for k, v in db.items() if k in _CONFIG_KEYS}
        db_meta = {k: v for k, v in db.items() if k not in _CONFIG_KEYS and k != "tables"}
        for table_name, table in db.get("tables", {}).items():
            table_config = {k: v for k, v in table.items() if k in _TABLE_CONFIG_KEYS}
            table_meta = {k: v for k, v in table.items() if k not in _TABLE_CONFIG_KEYS}
            if table_config:
                db_config.setdefault("tables", {})[table_name] = table_config
            if table_meta:
                db_meta.setdefault("tables", {})[table_name] = table_meta
        if db_config:
            config.setdefault("databases", {})[db_name] = db_config
        if db_meta:
            meta.setdefault("databases", {})[db_name] = db_meta
    return config, meta
#: Response headers a Service Worker may not or should not pass on.
_DROP_HEADERS = {b"set-cookie", b"content-length", b"transfer-encoding", b"connection"}


def prepare_connection(conn: sqlite3.Connection) -> None:
    """Datasette's ``prepare_connection`` hook: ``PRAGMA trusted_schema=OFF`` on every connection.

    SQLite then refuses, inside views, triggers and generated columns of the
    publisher's schema, any SQL function or virtual table not marked innocuous
    (sqlite.org, "Defense against the dark arts"): a view cannot call a plugin's
    function on the reader's behalf. Registered by ``start`` as the plugin ``glasshouse_hardening``.
    """
    conn.execute("PRAGMA trusted_schema = OFF")


async def start(config: dict) -> None:
    """Create and start Datasette for the database file at ``config["database_path"]``.

    ``config`` shape: ``{"database_path": str, "settings": dict, "metadata": dict,
    "plugins": [module name, ...]}``; ``plugins`` (optional) names Glasshouse's built-in
    Datasette plugins (``glasshouse_report``), modules beside this one, registered before
    Datasette starts. Raises ``ImportError`` if one is missing. Every connection gets
    ``trusted_schema=OFF`` (``prepare_connection``).
    """
    global _app, _datasette
    import importlib
    from types import ModuleType

    import datasette
    from datasette import hookimpl
    from datasette.app import Datasette
    from datasette.plugins import pm

    if not pm.has_plugin("glasshouse_hardening"):
        hardening = ModuleType("glasshouse_hardening")
        setattr(hardening, "prepare_connection", hookimpl(prepare_connection))  # noqa: B010 (a module made here)
        pm.register(hardening, name="glasshouse_hardening")
    for name in config.get("plugins", []):
        if not pm.has_plugin(name):
            pm.register(importlib.import_module(name), name=name)

    options: dict = {"metadata": config["metadata"]}
    if not datasette.__version__.startswith("0."):
        options["config"], options["metadata"] = split_for_datasette_1(config["metadata"])
    ds = Datasette(immutables=[config["database_path"]], settings=config["settings"], **options)
    await ds.invoke_startup()
    _datasette = ds
    _app = ds.app()


async def warm_up() -> None:
    """Render Datasette's main pages once, so a memory snapshot taken next holds them compiled.

    Asks for the index, the first database's page, its first table (one row, HTML and JSON), a
    row page and an SQL query page through ``handle``; the answers are dropped. Jinja compiles
    each template on first use and Datasette imports some modules lazily: a Service Worker
    restored from the snapshot then answers its first page without that work.
    """
    pages = [("/", "")]
    names = [name for name in _datasette.databases if name != "_internal"]
    if names:
        database = _datasette.databases[names[0]]
        route = "/" + quote(getattr(database, "route", names[0]), safe="")
        pages += [(route, ""), (route, "sql=select+1")]
        tables = await database.table_names()
        if tables:
            table = f"{route}/{quote(tables[0], safe='')}"
            pages += [(table, "_size=1"), (f"{table}.json", "_size=1"), (f"{table}/1", "")]
    for path, query in pages:
        await _call("GET", path, query, [["accept", "text/html"]], b"", "localhost", "http")


def prepare_snapshot(modules: dict | None = None) -> str:
    """Make this Python ready for a Pyodide memory snapshot; return ``""`` if it is, else why not.

    A snapshot holds the WebAssembly memory only, not Pyodide's file system or the JavaScript
    objects Python refers to, so: every SQLite connection to a database file is closed (its file
    handle would not exist after a restore; Datasette reconnects on the next query), garbage is
    collected (so no stray JavaScript proxy is left), and the snapshot is refused while asyncio
    tasks are pending or once a native extension (``.so``) was loaded (its code and function
    table entries live outside the memory, pyodide/pyodide#6254 and the docs of ``_makeSnapshot``).
    ``modules`` is where to look for those (default ``sys.modules``; Pyodide's own standard
    library extensions are built in, so a ``.so`` there is a package's).
    """
    import asyncio
    import gc

    if native := _native_extensions(modules):
        return native
    # Called from JavaScript between requests: no loop is running, so name Pyodide's WebLoop.
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:  # no event loop at all: nothing can be pending
        loop = None
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()] if loop else []
    if pending:
        return f"{len(pending)} asyncio tasks are still pending"
    for database in _datasette.databases.values():
        if getattr(database, "memory_name", None) or getattr(database, "is_memory", False):
            continue  # in-memory databases (Datasette's _internal) live in the snapshot itself
        for name in ("_read_connection", "_write_connection"):
            connection = getattr(database, name, None)
            if connection is not None:
                connection.close()
                setattr(database, name, None)
        for connection in getattr(database, "_all_file_connections", []):
            connection.close()
        getattr(database, "_all_file_connections", []).clear()
    gc.collect()
    return ""


def _native_extensions(modules: dict | None = None) -> str:
    """``""``, or why a snapshot cannot hold these ``modules`` (default ``sys.modules``): some are ``.so`` files."""
    import sys

    native = sorted(
        name for name, module in list((sys.modules if modules is None else modules).items())
        if str(vars(module).get("__file__") if hasattr(module, "__dict__") else "").endswith(".so")
    )  # fmt: skip
    return f"native extension modules are loaded ({', '.join(native[:3])})" if native else ""


def prepare_import_snapshot(plugins: list) -> str:
    """Import Datasette, the installed plugins and ``plugins`` (built-in plugin module names), for a
    snapshot taken before any database is opened; return ``""`` if one can be taken, else why not.

    Used by the build's Node check (``builder/runtime/node/compat_check.mjs``): a later check of the
    same runtime, wheels and modules restores that snapshot instead of loading and importing them.
    Nothing of a publisher's (database, metadata, settings) has reached Python at this point.
    """
    import gc
    import importlib

    import datasette.app  # noqa: F401 (importing it loads the installed plugins' entry points)

    for name in plugins:
        importlib.import_module(name)
    gc.collect()
    return _native_extensions()


def resume() -> None:
    """Make a Python restored from a memory snapshot unique again; call once after the restore.

    Every restore starts from the same memory, so ``random`` would repeat the same sequence and
    every restored worker would sign with the same Datasette secret: ``random`` is reseeded from
    the browser's entropy (``os.urandom``), Datasette gets a new signing secret and root token,
    and its ASGI app is made again (asgi-csrf keeps the secret it was made with).
    """
    global _app
    import random
    import secrets

    random.seed()
    _datasette._secret = secrets.token_hex(32)
    _datasette._root_token = secrets.token_hex(32)
    _app = _datasette.app()


async def handle(method: str, path: str, query_string: str, headers: list, body: Any, host: str, scheme: str) -> Any:
    """Answer one HTTP request through Datasette's ASGI app.

    ``path`` is percent-encoded as in the URL; ``headers`` is a list of
    ``[name, value]`` string pairs; ``body`` is a JS Uint8Array or None. Returns a JS object ``{status: int,
    headers: [[name, value], ...], body: Uint8Array}``.
    """
    request_body = body.to_bytes() if body is not None else b""
    result = await _call(method, path, query_string, headers, request_body, host, scheme)
    from pyodide.ffi import to_js  # only inside Pyodide; keeps this module importable elsewhere

    return to_js(result, dict_converter=__import__("js").Object.fromEntries)


async def _call(method: str, path: str, query_string: str, headers: list, request_body: bytes, host: str, scheme: str) -> dict:
    """One ASGI request to Datasette: ``{"status": int, "headers": [[name, value]], "body": bytes}``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(b"host", host.encode("latin-1"))]
        + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers if k.lower() != "host"],
        "client": ("127.0.0.1", 0),
        "server": (host.split(":")[0], int(host.split(":")[1]) if ":" in host else (443 if scheme == "https" else 80)),
    }
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": request_body, "more_body": False}

    status = 500
    response_headers: list[list[str]] = []
    chunks: list[bytes] = []

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers", []):
                if key.lower() not in _DROP_HEADERS:
                    response_headers.append([key.decode("latin-1"), value.decode("latin-1")])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await _app(scope, receive, send)
    return {"status": status, "headers": response_headers, "body": b"".join(chunks)}
