"""Runs inside Pyodide, in the reader's Service Worker or worker mode's Worker: Datasette as an ASGI app.

The runtime core (js/core.mjs) calls ``start(config)`` once per worker lifetime and then
``handle(method, url_path, query_string, headers, body)`` for every request. No
sockets and no threads: SQL runs on Pyodide's event loop (``num_sql_threads=0``).
"""

from __future__ import annotations

from urllib.parse import unquote

_app = None
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


def prepare_connection(conn: object) -> None:
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
    global _app
    import importlib
    from types import ModuleType

    import datasette
    from datasette import hookimpl
    from datasette.app import Datasette
    from datasette.plugins import pm

    if not pm.has_plugin("glasshouse_hardening"):
        hardening = ModuleType("glasshouse_hardening")
        hardening.prepare_connection = hookimpl(prepare_connection)
        pm.register(hardening, name="glasshouse_hardening")
    for name in config.get("plugins", []):
        if not pm.has_plugin(name):
            pm.register(importlib.import_module(name), name=name)

    options: dict = {"metadata": config["metadata"]}
    if not datasette.__version__.startswith("0."):
        options["config"], options["metadata"] = split_for_datasette_1(config["metadata"])
    ds = Datasette(immutables=[config["database_path"]], settings=config["settings"], **options)
    await ds.invoke_startup()
    _app = ds.app()


async def handle(method: str, path: str, query_string: str, headers: list, body: object | None, host: str, scheme: str):
    """Answer one HTTP request through Datasette's ASGI app.

    ``path`` is percent-encoded as in the URL; ``headers`` is a list of
    ``[name, value]`` string pairs; ``body`` is a JS Uint8Array or None. Returns a JS object ``{status: int,
    headers: [[name, value], ...], body: Uint8Array}``.
    """
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
    request_body = body.to_bytes() if body is not None else b""
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
    from pyodide.ffi import to_js  # only inside Pyodide; keeps this module importable elsewhere

    return to_js(
        {"status": status, "headers": response_headers, "body": b"".join(chunks)},
        dict_converter=__import__("js").Object.fromEntries,
    )
