"""The reader benchmark's counting proxy (bench/proxy.py): what it counts, and the floor page's host."""

from __future__ import annotations

import gzip
import http.client
import sys
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from proxy import CountingProxy, floor_page  # bench/ is scripts, not a package

from builder.pyodide import PYODIDE_VERSION
from tests.support.loopback import LoopbackServer

BODY = b"abcdefgh" * 4096


class Upstream(BaseHTTPRequestHandler):
    """Answers every GET with the request's Host in a header: gzip with Content-Length for
    ``/gz``, a streamed body without Content-Length for ``/stream``, 304 for ``/cached``."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/cached":
            self.send_response(304)
            self.send_header("X-Seen-Host", self.headers["Host"])
            self.end_headers()
            return
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.send_header("X-Seen-Host", self.headers["Host"])
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
            return
        body = gzip.compress(BODY, mtime=0)
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Host", self.headers["Host"])
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def proxy(loopback_server: Callable[..., LoopbackServer]) -> Iterator[CountingProxy]:
    counting = CountingProxy(loopback_server(Upstream).port)
    yield counting
    counting.close()


def get(proxy: CountingProxy, host: str, path: str) -> http.client.HTTPResponse:
    """GET ``path`` from ``host`` through ``proxy``; returns once the proxy has recorded it."""
    count = proxy.mark()
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    connection.request("GET", path, headers={"Host": host, "Accept-Encoding": "gzip"})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    deadline = time.monotonic() + 5
    while proxy.mark() == count and time.monotonic() < deadline:  # recorded once the body is sent
        time.sleep(0.01)
    return response


def test_it_counts_the_bytes_sent_compressed_as_they_went_over_the_wire(proxy: CountingProxy) -> None:
    mark = proxy.mark()
    response = get(proxy, "abc.localhost:1", "/gz")
    assert gzip.decompress(response.body) == BODY
    [record] = proxy.since(mark)
    assert (record.path, record.status, record.encoding) == ("/gz", 200, "gzip")
    assert record.bytes == len(gzip.compress(BODY, mtime=0)) < len(BODY)
    assert response.headers["X-Seen-Host"] == "abc.localhost:1"


def test_it_streams_a_body_without_content_length_and_counts_it(proxy: CountingProxy) -> None:
    response = get(proxy, "abc.localhost:1", "/stream")
    assert response.body == BODY
    assert proxy.since(0)[-1].bytes == len(BODY)


def test_a_revalidation_counts_as_a_request_without_bytes(proxy: CountingProxy) -> None:
    assert get(proxy, "abc.localhost:1", "/cached").status == 304
    assert (proxy.since(0)[-1].status, proxy.since(0)[-1].bytes) == (304, 0)


def test_the_floor_host_serves_its_page_and_fetches_the_rest_from_the_gallery_host(proxy: CountingProxy) -> None:
    proxy.floor_host = "gallery.localhost:1"
    proxy.floor_html = floor_page(f"/_runtime/pyodide-{PYODIDE_VERSION}/", "/_build/b/pyodide-lock.json")
    page = get(proxy, "floor.localhost:1", "/")
    assert f'from "/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs"'.encode() in page.body
    assert get(proxy, "floor.localhost:1", "/gz").headers["X-Seen-Host"] == "gallery.localhost:1"
    assert [r.host for r in proxy.since(0)] == ["floor.localhost:1", "floor.localhost:1"]


def test_a_dead_upstream_answers_502_and_is_recorded(proxy: CountingProxy) -> None:
    proxy.upstream_port = 1  # nothing listens there
    assert get(proxy, "abc.localhost:1", "/gz").status == 502
    assert proxy.since(0)[-1].status == 502


def test_a_replay_sends_the_recorded_gets_again_with_another_accept_encoding(proxy: CountingProxy) -> None:
    get(proxy, "abc.localhost:1", "/gz")
    get(proxy, "abc.localhost:1", "/cached")  # a 304 is not sent again: it downloaded nothing
    recorded = proxy.since(0)
    assert recorded[0].accept_encoding == "gzip"
    replayed = proxy.replay(recorded, "gzip, deflate, br")
    assert [(r.host, r.path, r.status, r.accept_encoding) for r in replayed] == [
        ("abc.localhost:1", "/gz", 200, "gzip, deflate, br")
    ]
    assert replayed[0].bytes == recorded[0].bytes
