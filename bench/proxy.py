"""A counting HTTP proxy in front of the gallery server, and the runtime-floor page it serves.

The browser reaches every gallery origin (``http://<id>.localhost:<proxy port>/``) through this
proxy, so every request it sends to the network is counted here, the Service Worker's downloads
included: each record is ``(seconds since start, host, method, path, status, body bytes as sent,
Content-Encoding, the request's Accept-Encoding)``, the body counted as it went over the wire
(gzip and Brotli copies count compressed). ``replay`` sends recorded GETs again with another
``Accept-Encoding``, to measure what a browser asking for other codings would download.

The host ``floor.localhost`` is the bench's own page (``FLOOR_LABEL``): ``/`` is a bare page that
loads Pyodide from the gallery's runtime URLs and imports ``sqlite3``, the "runtime floor" a
gallery's cold visit is compared with; every other path on that host is forwarded to the gallery's
host, so the floor fetches the same files from the same server as the gallery.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The host label of the runtime-floor page.
FLOOR_LABEL = "floor"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Record:
    """One request the browser sent to the network, as the proxy answered it."""

    at: float
    host: str
    method: str
    path: str
    status: int
    bytes: int
    encoding: str
    accept_encoding: str = ""
    #: The request's ``Range`` header ("" for none): a lazy database's blocks are ranged GETs.
    range: str = ""


def floor_page(runtime_url: str, lock_file_url: str, std_lib_url: str | None = None) -> bytes:
    """The runtime-floor page: load Pyodide from ``runtime_url`` (with ``lock_file_url``, and the
    build's compiled standard library ``std_lib_url`` when it has one, as the gallery does: bundles
    store no other ``python_stdlib.zip``) in the page itself, import ``sqlite3`` and run one query,
    then set ``data-bench-ready`` on ``<body>`` (``data-bench-error`` with the message if that failed)."""
    options = {"indexURL": runtime_url, "lockFileURL": lock_file_url, **({"stdLibURL": std_lib_url} if std_lib_url else {})}
    script = f"""
import {{ loadPyodide }} from {json.dumps(runtime_url + "pyodide.mjs")};
try {{
  const pyodide = await loadPyodide({json.dumps(options)});
  pyodide.runPython("import sqlite3; sqlite3.connect(':memory:').execute('select 1').fetchall()");
  document.body.dataset.benchReady = String(performance.now());
}} catch (error) {{
  document.body.dataset.benchError = String(error && error.message || error);
}}"""
    return f'<!doctype html><meta charset="utf-8"><title>Runtime floor</title><body><script type="module">{script}</script>'.encode()


class CountingProxy:
    """Forward requests to ``127.0.0.1:upstream_port`` on a free port of its own, recording each.

    ``floor_host``: the gallery host (``<id>.localhost:<port>``) the floor page's files are
    fetched from, and ``floor_html`` its page; both set once a gallery exists. Stop with ``close``.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.records: list[Record] = []
        self.floor_host = ""
        self.floor_html = b""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # no access log on stderr
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="proxy")
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mark(self) -> int:
        """An index into ``records``: ``since(mark)`` lists what was requested after it."""
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> list[Record]:
        with self._lock:
            return self.records[mark:]

    def replay(self, records: list[Record], accept_encoding: str) -> list[Record]:
        """Send each GET of ``records`` that was answered 200 or 206 again, one after the other, through
        this proxy with ``Accept-Encoding: accept_encoding`` and the recorded ``Range`` (and nothing
        else of the browser's request); return the new records, counted as the browser's are. The
        body is read and dropped."""
        mark = self.mark()
        for record in records:
            if record.method != "GET" or record.status not in (200, 206):
                continue
            before = self.mark()
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            headers = {"Host": record.host, "Accept-Encoding": accept_encoding, **({"Range": record.range} if record.range else {})}
            try:
                connection.request("GET", record.path, headers=headers)
                response = connection.getresponse()
                while response.read(65536):
                    pass
            finally:
                connection.close()
            # The proxy records a request just after sending its body: wait for that, so none is missed.
            deadline = time.monotonic() + 10
            while self.mark() == before and time.monotonic() < deadline:
                time.sleep(0.005)
        # Only the replay's own: a request the browser sent meanwhile carries the browser's header.
        return [r for r in self.since(mark) if r.accept_encoding == accept_encoding]

    def _record(self, handler: BaseHTTPRequestHandler, host: str, status: int, sent: int, encoding: str) -> None:
        record = Record(time.monotonic() - self.started, host, handler.command, handler.path, status, sent, encoding,
                        handler.headers.get("Accept-Encoding", ""), handler.headers.get("Range", ""))  # fmt: skip
        with self._lock:
            self.records.append(record)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        host = handler.headers.get("Host", "")
        if host.split(".", 1)[0] == FLOOR_LABEL:
            if handler.path.split("?", 1)[0] == "/":
                body = self.floor_html
                handler.send_response(200)
                handler.send_header("Content-Type", "text/html; charset=utf-8")
                handler.send_header("Cache-Control", "no-store")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)
                self._record(handler, host, 200, len(body), "")
                return
            upstream_host = self.floor_host
        else:
            upstream_host = host
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = upstream_host
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=300)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
        except OSError as error:
            handler.send_error(502, f"the gallery server did not answer: {error}")
            self._record(handler, host, 502, 0, "")
            connection.close()
            return
        try:
            handler.send_response(response.status, response.reason)
            known_length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    handler.send_header(name, value)
            if known_length is None:
                handler.send_header("Connection", "close")  # the body ends when the connection does
                handler.close_connection = True
            handler.end_headers()
            sent = 0
            if handler.command != "HEAD":
                while chunk := response.read(65536):
                    handler.wfile.write(chunk)
                    sent += len(chunk)
            self._record(handler, host, response.status, sent, response.getheader("Content-Encoding") or "")
        except OSError as error:
            self._record(handler, host, 599, 0, f"proxy error: {error}")
            handler.close_connection = True
        finally:
            connection.close()
