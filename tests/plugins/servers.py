"""Servers the tests talk to over loopback: the live server as the app and content origins (the
session's, or a test's own that it may stop: ``stoppable_gallery_server``), moto's S3 server
(shared, or a test's own), a private Redis a test may stop and restart, and stub HTTP servers
playing a third party (``loopback_server``; ``article_server``, an article that embeds a gallery).

Each is a real process or thread on 127.0.0.1 (DESIGN.md: real components wherever a user would
meet them); a server that does not answer in time fails the test with its log.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.loopback import LoopbackServer, free_port
from tests.support.process_wait import wait_http as _wait_http

# --- Stub servers -------------------------------------------------------------------------------


@pytest.fixture
def loopback_server() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], LoopbackServer]]:
    """``loopback_server(handler) -> LoopbackServer``: a stub HTTP server on 127.0.0.1 answering with ``handler``.

    ``handler`` is the test's ``BaseHTTPRequestHandler`` subclass (the other side: an ingest
    endpoint, a failing store, a page of a third-party site); the server runs in a daemon thread
    (``tests.support.loopback.LoopbackServer``: ``url``, ``address``, ``port``). Every server the
    test started is stopped after it.
    """
    servers: list[LoopbackServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> LoopbackServer:
        servers.append(LoopbackServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def article_html(snippet: str) -> str:
    """A third-party article page: some text, the embed ``snippet``, and a listener that records the
    gallery's height messages in ``window.resizes`` (``[{origin, height}]``, ``glasshouse:resize`` only)."""
    from gallery.embed import RESIZE_MESSAGE

    return f"""<!doctype html><html><head><meta charset="utf-8"><title>An article</title></head>
<body><h1>Albums in the Chinook store</h1><p>The table below is a live gallery.</p>
{snippet}
<script>
window.resizes = [];
window.addEventListener("message", (event) => {{
  const frame = document.querySelector("iframe[data-glasshouse-embed]");
  if (event.source !== frame.contentWindow || !event.data || event.data.type !== "{RESIZE_MESSAGE}") return;
  window.resizes.push({{origin: event.origin, height: event.data.height}});
}});
</script></body></html>"""


@pytest.fixture
def article_server(loopback_server: Callable[..., LoopbackServer]) -> Callable[[str], str]:
    """``publish(snippet) -> article URL``: ``article_html(snippet)`` at ``http://127.0.0.1:<free port>/article.html``.

    A stub server on loopback (``loopback_server``), cross-site to the galleries on ``*.localhost``:
    the article that embeds a gallery. Publishing again replaces the page.
    """
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

    server = loopback_server(Handler)

    def publish(snippet: str) -> str:
        pages["/article.html"] = article_html(snippet).encode()
        return f"{server.url}/article.html"

    return publish


# --- Live server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveGalleryServer:
    """The live server as both origins: ``url`` is the app origin (``http://127.0.0.1:<port>``, pytest.ini's
    ``--liveserver``), ``gallery_url(id)`` a content origin."""

    url: str
    port: int

    def gallery_url(self, gallery_id: str, path: str = "/") -> str:
        """``http://<gallery_id>.localhost:<port><path>``: what the app itself links to."""
        return f"http://{gallery_id}.localhost:{self.port}{path}"


@pytest.fixture
def live_gallery_server(live_server: Any, settings: Any) -> LiveGalleryServer:
    """pytest-django's ``live_server``, with gallery URLs pointing at it.

    Sets ``CONTENT_DOMAIN = "localhost"``, ``CONTENT_SCHEME = "http"`` and
    ``CONTENT_PORT`` = the live server's port (and the app's ``SECURE_CSP`` to match), so ``http://<id>.localhost:<port>/``
    reaches the same server, whose ``ContentOriginMiddleware`` serves the gallery.
    Chromium resolves ``*.localhost`` to loopback by itself. Implies transactional
    database access (through ``live_server``).
    """
    port = urlsplit(live_server.url).port
    assert port is not None, live_server.url
    settings.CONTENT_DOMAIN = "localhost"
    settings.CONTENT_SCHEME = "http"
    settings.CONTENT_PORT = str(port)
    # The app's CSP names the gallery origins (their port included) for frames and images.
    from gallery.project.settings.web import app_csp, content_origins_source

    settings.SECURE_CSP = app_csp(content_origins_source("http", "localhost", str(port)))
    return LiveGalleryServer(url=live_server.url, port=port)


class StoppableGalleryServer:
    """A live server of one test as the app and content origins (``url``, ``port``, ``gallery_url``
    as ``LiveGalleryServer``), which the test stops and starts again: while it is stopped nothing
    listens on its port and no connection to it is left open, as when the reader goes offline.

    Django's ``LiveServerThread`` (the static files handler as pytest-django's), whose request
    handler records its connections so that ``stop`` cuts the kept-alive ones too (a stopped
    Django server otherwise keeps answering on them), and which may bind its port again at once.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def gallery_url(self, gallery_id: str, path: str = "/") -> str:
        """``http://<gallery_id>.localhost:<port><path>``."""
        return LiveGalleryServer(self.url, self.port).gallery_url(gallery_id, path)

    def start(self) -> None:
        """Serve (again, on the same port after ``stop``): the reader is back online."""
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler

        connections: set[socket.socket] = set()
        lock = threading.Lock()

        class Handler(QuietWSGIRequestHandler):
            def setup(self) -> None:
                super().setup()
                with lock:
                    connections.add(self.connection)

            def finish(self) -> None:
                with lock:
                    connections.discard(self.connection)
                super().finish()

        class Thread(LiveServerThread):
            def _create_server(self, connections_override: Any = None) -> Any:
                return self.server_class(
                    (self.host, self.port), Handler, allow_reuse_address=True, connections_override=connections_override
                )

        from django.db import connections as databases

        # As pytest-django's LiveServer: an in-memory SQLite test database is shared with the thread.
        shared = {db.alias: db for db in databases.all() if db.vendor == "sqlite" and db.is_in_memory_db()}
        for db in shared.values():
            db.inc_thread_sharing()
        self._connections, self._lock, self._shared = connections, lock, shared
        self._thread = Thread("127.0.0.1", StaticFilesHandler, connections_override=shared, port=self.port)
        self._thread.daemon = True
        self._thread.start()
        self._thread.is_ready.wait()
        if self._thread.error:
            raise self._thread.error
        self.port = self._thread.port

    def stop(self) -> None:
        """Close the listening socket and every open connection: the browser's next request fails."""
        if not self._thread.is_alive():
            return
        self._thread.httpd.shutdown()
        self._thread.httpd.server_close()
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed by the other side meanwhile
        self._thread.join()
        for db in self._shared.values():
            db.dec_thread_sharing()


@pytest.fixture
def stoppable_gallery_server(live_gallery_server: LiveGalleryServer, settings: Any) -> Iterator[StoppableGalleryServer]:
    """A second live server (on a free port of 127.0.0.1) that the test may stop and start again
    (``StoppableGalleryServer``).

    The session's ``live_server`` must keep serving other tests, so a test that takes the network
    away from a reader uses this one. Gallery URLs (``CONTENT_PORT``, the app's ``SECURE_CSP``)
    point at it for the test, as ``live_gallery_server`` does for the shared one; the content
    origin ignores the port, so ``http://<id>.localhost:<port>/`` reaches it. Stopped after the test.
    """
    server = StoppableGalleryServer()
    settings.CONTENT_PORT = str(server.port)
    from gallery.project.settings.web import app_csp, content_origins_source

    settings.SECURE_CSP = app_csp(content_origins_source("http", "localhost", str(server.port)))
    try:
        yield server
    finally:
        server.stop()


# --- S3 (moto server) --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:<port>``) of moto's S3 server, one process per session.

    Started as ``python -m moto.server -H 127.0.0.1 -p <free port>`` and waited for
    over HTTP (30 s at most, else the test fails with the server's log). Prefer
    ``moto_s3``, which also sets dummy AWS credentials for the test.
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{endpoint}/moto-api/", process, 30, "moto server", log_path)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def moto_s3(moto_s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Endpoint URL of moto's S3 server, with dummy AWS credentials set for this test.

    Sets ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` = ``testing``,
    ``AWS_DEFAULT_REGION`` = ``us-east-1``, and points the AWS config files at
    ``/dev/null`` so no real profile is read. Workers started during the test
    inherit them. Buckets persist for the session: use unique names (``s3_bucket``).
    """
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    return moto_s3_server


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on the moto server; ``env`` holds the variables a worker needs to use it."""

    name: str
    endpoint_url: str
    region: str

    @property
    def env(self) -> dict[str, str]:
        return {"S3_BUCKET": self.name, "S3_ENDPOINT_URL": self.endpoint_url, "S3_REGION": self.region}

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint, to look at what a build wrote."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)


@pytest.fixture
def s3_bucket(moto_s3: str, settings: Any) -> S3Bucket:
    """A new, empty bucket on moto's server, made the store of this test.

    Overrides ``S3_BUCKET``, ``S3_ENDPOINT_URL`` and ``S3_REGION`` (``gallery.storage``
    rebuilds its cached store), and ``celery_worker_factory`` passes them to workers.
    """
    bucket = S3Bucket(name=f"glasshouse-test-{secrets.token_hex(6)}", endpoint_url=moto_s3, region="us-east-1")
    bucket.client().create_bucket(Bucket=bucket.name)
    settings.S3_BUCKET = bucket.name
    settings.S3_ENDPOINT_URL = bucket.endpoint_url
    settings.S3_REGION = bucket.region
    return bucket


@dataclass
class PrivateServer:
    """A server process of this test only (Redis or moto), which the test may stop, freeze and restart."""

    command: list[str]
    port: int
    log_path: Path
    ready: Callable[[PrivateServer], None]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.ready(self)

    def stop(self) -> None:
        """Stop the server for good (SIGTERM, then SIGKILL): its in-memory state is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its state and its port but answers nothing (connections hang)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen server answers again, with its state intact."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateServer]:
    """A Redis server of this test only (``/usr/bin/redis-server`` on a free port), without persistence.

    ``stop()`` then ``start()`` is a broker restart that loses every message; ``url`` is
    ``redis://127.0.0.1:<port>/0``. Never touches the machine's Redis on 6379.
    """
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()

    def ready(server: PrivateServer) -> None:
        import redis

        client = redis.Redis(port=server.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or (server.process and server.process.poll() is not None):
                    pytest.fail(f"private redis-server did not start:\n{server.log_path.read_text()}")
                time.sleep(0.1)
            finally:
                client.close()

    server = PrivateServer(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        port, tmp_path / "redis.log", ready,
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_s3(moto_s3: str, tmp_path: Path, settings: Any) -> Iterator[tuple[PrivateServer, S3Bucket]]:
    """A moto S3 server of this test only, with one bucket made the store of this test (as ``s3_bucket``).

    Returns ``(server, bucket)``: ``server.freeze()``/``thaw()`` make the store hang and come back
    with its objects (moto keeps them in memory, so a restart would lose them). Dummy credentials
    come from ``moto_s3``; ``celery_worker_factory`` passes the bucket's settings to workers.
    """
    port = free_port()

    def ready(server: PrivateServer) -> None:
        assert server.process is not None
        _wait_http(f"http://127.0.0.1:{server.port}/moto-api/", server.process, 30, "moto server", server.log_path)

    server = PrivateServer(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, tmp_path / "moto.log", ready
    )
    server.start()
    bucket = S3Bucket(name=f"glasshouse-test-{secrets.token_hex(6)}", endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1")
    try:
        bucket.client().create_bucket(Bucket=bucket.name)
        settings.S3_BUCKET = bucket.name
        settings.S3_ENDPOINT_URL = bucket.endpoint_url
        settings.S3_REGION = bucket.region
        yield server, bucket
    finally:
        server.stop()
