"""Runs inside Pyodide, in the reader's Service Worker: Datasette as an ASGI app.

The Service Worker calls ``start(config)`` once per worker lifetime and then
``handle(method, url_path, query_string, headers, body)`` for every request. No
sockets and no threads: SQL runs on Pyodide's event loop (``num_sql_threads=0``).
"""

from __future__ import annotations

from urllib.parse import unquote

from pyodide.ffi import to_js

_app = None
#: Response headers a Service Worker may not or should not pass on.
_DROP_HEADERS = {b"set-cookie", b"content-length", b"transfer-encoding", b"connection"}


async def start(config: dict) -> None:
    """Create and start Datasette for the database file at ``config["database_path"]``.

    ``config`` shape: ``{"database_path": str, "settings": dict, "metadata": dict}``.
    """
    global _app
    from datasette.app import Datasette

    ds = Datasette(
        immutables=[config["database_path"]],
        settings=config["settings"],
        metadata=config["metadata"],
    )
    await ds.invoke_startup()
    # Render one page so templates compile and plugins load before the first reader request.
    await ds.client.get("/-/versions.json")
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
    return to_js(
        {"status": status, "headers": response_headers, "body": b"".join(chunks)},
        dict_converter=__import__("js").Object.fromEntries,
    )
