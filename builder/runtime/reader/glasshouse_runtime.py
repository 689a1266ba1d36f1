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
    "plugins": [module name, ...], "lazy": {"read_pointer": int, "size": int} | None,
    "inspect": {"size": int, "sha256": str, "table_counts": {table: int | None}} | None}``;
    ``plugins`` (optional) names Glasshouse's built-in
    Datasette plugins (``glasshouse_report``), modules beside this one, registered before
    Datasette starts. Raises ``ImportError`` if one is missing. Every connection gets
    ``trusted_schema=OFF`` (``prepare_connection``). With ``lazy`` (optional), the database is
    read through the lazy VFS (``read_lazily``) and the file at ``database_path`` is only a
    placeholder: Datasette then takes the file's size and hash from ``inspect``, which builds
    with a lazy database always carry.
    With ``inspect`` (optional; the build's ``builder.tables.table_counts``), Datasette gets it as its
    inspect data, as ``datasette inspect`` makes it: it counts no table when it starts (it counts
    every table of an immutable database then, and a lazy database would be fetched for that).
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
    if inspect := config.get("inspect"):
        options["inspect_data"] = inspect_data(config["database_path"], inspect)
    if not datasette.__version__.startswith("0."):
        options["config"], options["metadata"] = split_for_datasette_1(config["metadata"])
    ds = Datasette(immutables=[config["database_path"]], settings=config["settings"], **options)
    if config.get("lazy"):
        read_lazily(ds, config["database_path"], config["lazy"])
    await ds.invoke_startup()
    _datasette = ds
    _app = ds.app()


def inspect_data(path: str, inspect: dict) -> dict:
    """Datasette's inspect data (the shape ``datasette inspect`` writes) for the one database at ``path``.

    ``inspect`` is ``{"size": int (bytes), "sha256": str (hex), "table_counts": {table: int | None}}``.
    Returns ``{<file stem>: {"hash", "size", "file", "tables": {table: {"count": int | None}}}}``.
    """
    from pathlib import PurePosixPath

    tables = {name: {"count": count} for name, count in inspect["table_counts"].items()}
    return {PurePosixPath(path).stem: {"hash": str(inspect["sha256"]), "size": int(inspect["size"]), "file": path, "tables": tables}}


#: The SQLite VFS of a lazy database (lazy-database.mjs's ``LAZY_VFS``).
LAZY_VFS = "glasshouse-lazy"


def read_lazily(ds: Any, path: str, lazy: dict) -> None:
    """Make Datasette ``ds`` read the database at ``path`` through the lazy VFS.

    ``lazy`` is ``{"read_pointer": int, "size": int (bytes)}``: the xRead function
    lazy-database.mjs put in the function table and the file's size. Registers the VFS
    (``register_lazy_vfs``), connects the database through it, and runs its
    queries one at a time: a read that waits for the network suspends SQLite mid-query, and
    another query on the same connection must not enter it then. Raises ``KeyError`` if no
    database of ``ds`` is at ``path``, ``OSError`` if SQLite refuses the VFS.
    """
    import asyncio
    import functools

    register_lazy_vfs(int(lazy["read_pointer"]), int(lazy["size"]))
    database = next((db for db in ds.databases.values() if getattr(db, "path", None) == path), None)
    if database is None:
        raise KeyError(path)
    database.connect = functools.partial(_lazy_connect, database)
    lock = asyncio.Lock()
    execute_fn = database.execute_fn

    async def one_at_a_time(fn: Any) -> Any:
        async with lock:
            return await execute_fn(fn)

    database.execute_fn = one_at_a_time


def _lazy_connect(database: Any, write: bool = False) -> sqlite3.Connection:
    """Datasette's ``Database.connect`` for a lazy database: read-only, immutable, through ``LAZY_VFS``."""
    if write:
        raise sqlite3.OperationalError("a lazy database is read-only")
    conn = sqlite3.connect(f"file:{quote(database.path)}?vfs={LAZY_VFS}&immutable=1", uri=True, check_same_thread=False)
    getattr(database, "_all_file_connections", []).append(conn)
    return conn


def register_lazy_vfs(read_pointer: int, size: int) -> None:
    """Register ``LAZY_VFS``, a read-only SQLite VFS over one file of ``size`` bytes whose xRead is
    the C function at ``read_pointer`` (a function table index in Pyodide; lazy-database.mjs's
    ``suspendingXRead``). Its other methods are ctypes callbacks that never wait: every file it
    opens has that size, no journal exists, locks always succeed, writes fail with SQLITE_READONLY.
    Registering again keeps the first registration. Raises ``OSError`` if SQLite refuses it.
    """
    import ctypes

    global _lazy_vfs
    if _lazy_vfs is not None:
        return
    c_int, c_int64, c_void_p = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    ok, readonly, notfound = 0, 8, 12  # SQLITE_OK, SQLITE_READONLY, SQLITE_NOTFOUND

    class File(ctypes.Structure):  # sqlite3_file, with room for nothing else
        _fields_ = [("pMethods", c_void_p)]

    file_p = ctypes.POINTER(File)
    method = ctypes.CFUNCTYPE
    x_close = method(c_int, file_p)
    x_read = method(c_int, file_p, c_void_p, c_int, c_int64)
    x_write = method(c_int, file_p, c_void_p, c_int, c_int64)
    x_truncate = method(c_int, file_p, c_int64)
    x_sync = method(c_int, file_p, c_int)
    x_file_size = method(c_int, file_p, ctypes.POINTER(c_int64))
    x_lock = method(c_int, file_p, c_int)
    x_reserved = method(c_int, file_p, ctypes.POINTER(c_int))
    x_control = method(c_int, file_p, c_int, c_void_p)
    x_sector = method(c_int, file_p)

    class IoMethods(ctypes.Structure):  # sqlite3_io_methods, version 1
        _fields_ = [
            ("iVersion", c_int), ("xClose", x_close), ("xRead", x_read), ("xWrite", x_write),
            ("xTruncate", x_truncate), ("xSync", x_sync), ("xFileSize", x_file_size), ("xLock", x_lock),
            ("xUnlock", x_lock), ("xCheckReservedLock", x_reserved), ("xFileControl", x_control),
            ("xSectorSize", x_sector), ("xDeviceCharacteristics", x_sector),
        ]  # fmt: skip

    class Vfs(ctypes.Structure):  # sqlite3_vfs, version 1
        pass

    vfs_p = ctypes.POINTER(Vfs)
    x_open = method(c_int, vfs_p, ctypes.c_char_p, file_p, c_int, ctypes.POINTER(c_int))
    x_delete = method(c_int, vfs_p, ctypes.c_char_p, c_int)
    x_access = method(c_int, vfs_p, ctypes.c_char_p, c_int, ctypes.POINTER(c_int))
    x_full_pathname = method(c_int, vfs_p, ctypes.c_char_p, c_int, c_void_p)
    Vfs._fields_ = [
        ("iVersion", c_int), ("szOsFile", c_int), ("mxPathname", c_int), ("pNext", c_void_p),
        ("zName", ctypes.c_char_p), ("pAppData", c_void_p), ("xOpen", x_open), ("xDelete", x_delete),
        ("xAccess", x_access), ("xFullPathname", x_full_pathname), ("xDlOpen", c_void_p),
        ("xDlError", c_void_p), ("xDlSym", c_void_p), ("xDlClose", c_void_p), ("xRandomness", c_void_p),
        ("xSleep", c_void_p), ("xCurrentTime", c_void_p), ("xGetLastError", c_void_p),
    ]  # fmt: skip

    def file_size(_file: Any, out: Any) -> int:
        out[0] = size
        return ok

    def reserved(_file: Any, out: Any) -> int:
        out[0] = 0
        return ok

    methods = IoMethods(
        1, x_close(lambda _f: ok), x_read(read_pointer), x_write(lambda *_: readonly), x_truncate(lambda *_: readonly),
        x_sync(lambda *_: ok), x_file_size(file_size), x_lock(lambda *_: ok), x_lock(lambda *_: ok),
        x_reserved(reserved), x_control(lambda *_: notfound), x_sector(lambda _f: 4096), x_sector(lambda _f: 0),
    )  # fmt: skip

    def open_file(_vfs: Any, _name: Any, file: Any, _flags: int, out_flags: Any) -> int:
        file.contents.pMethods = ctypes.addressof(methods)
        if out_flags:
            out_flags[0] = 1  # SQLITE_OPEN_READONLY
        return ok

    def access(_vfs: Any, _name: Any, _flags: int, out: Any) -> int:
        out[0] = 0  # no journal, no WAL file
        return ok

    def full_pathname(_vfs: Any, name: bytes, size_out: int, out: Any) -> int:
        ctypes.memmove(out, name + b"\0", min(len(name) + 1, size_out))
        return ok

    lib = ctypes.CDLL(None)  # Pyodide links SQLite into its main module
    lib.sqlite3_vfs_find.restype = vfs_p
    vfs = Vfs()
    ctypes.pointer(vfs)[0] = lib.sqlite3_vfs_find(None).contents  # keep the default's randomness, sleep and time
    vfs.iVersion, vfs.szOsFile, vfs.mxPathname, vfs.pNext = 1, ctypes.sizeof(File), 1024, None
    vfs.zName = LAZY_VFS.encode()
    vfs.xOpen, vfs.xDelete, vfs.xAccess = x_open(open_file), x_delete(lambda *_: ok), x_access(access)
    vfs.xFullPathname = x_full_pathname(full_pathname)
    rc = lib.sqlite3_vfs_register(ctypes.byref(vfs), 0)
    if rc != ok:
        raise OSError(f"SQLite refused the lazy database's VFS (sqlite3_vfs_register returned {rc})")
    # SQLite keeps pointers to the structure, its methods and the callbacks: they must live as long.
    _lazy_vfs = (vfs, methods)


#: The registered lazy VFS and its methods, kept alive for SQLite (``register_lazy_vfs``).
_lazy_vfs: Any = None


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
