from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from builder.director import BuildDirector, BuildRequest
from builder.pyodide import PYODIDE_VERSION
from builder.storage import LocalStorage, MissingKey, S3Storage, StorageError, content_type_for
from tests.support.loopback import LoopbackServer, free_port


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("builds/b/index.html", "text/html; charset=utf-8"),
        ("builds/b/sw.js", "text/javascript; charset=utf-8"),
        (f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.mjs", "text/javascript; charset=utf-8"),
        (f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm", "application/wasm"),
        (f"runtime/pyodide-{PYODIDE_VERSION}/python_stdlib.zip", "application/zip"),
        ("builds/b/pyodide-lock.json", "application/json"),
        ("builds/b/data/chinook.db", "application/vnd.sqlite3"),
        ("uploads/b/source.exe", "application/octet-stream"),
        ("uploads/b/evil.svg", "application/octet-stream"),
        ("uploads/b/evil.css", "application/octet-stream"),
        ("builds/b/data/evil.svg", "application/octet-stream"),
        ("builds/b/-/static/app.css", "text/css; charset=utf-8"),
        ("builds/b/-/static/codemirror-5.57.0.min.js", "text/javascript; charset=utf-8"),
        ("builds/b/-/static-plugins/datasette-cluster-map/images/marker-icon.png", "image/png"),
        ("builds/b/-/static-plugins/datasette_vega/logo.svg", "image/svg+xml"),
        ("builds/b/-/static-plugins/p/font.woff2", "font/woff2"),
        ("builds/b/-/static-plugins/p/unknown.xyz", "application/octet-stream"),
        ("builds/b/js/core.mjs", "text/javascript; charset=utf-8"),
        ("builds/b/card.png", "image/png"),
        ("builds/b/manifest.webmanifest", "application/manifest+json"),
        ("builds/b/icon-192.png", "image/png"),
        ("builds/b/icon-512.png", "image/png"),
        ("builds/b/data/icon-192.png", "application/octet-stream"),
        ("uploads/b/icon-512.png", "application/octet-stream"),
        ("builds/b/download.zip", "application/zip"),
        ("builds/b/data/card.png", "application/octet-stream"),
        ("uploads/b/card.png", "application/octet-stream"),
    ],
)
def test_content_types_come_from_the_fixed_map(key: str, content_type: str) -> None:
    assert content_type_for(key) == content_type


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", ""])
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe storage key"):
        LocalStorage(tmp_path).put_bytes(key, b"x")


def test_local_storage_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("builds/x/a.json", b"{}")
    assert storage.exists("builds/x/a.json")
    assert storage.size("builds/x/a.json") == 2
    assert list(storage.keys("builds/")) == ["builds/x/a.json"]
    assert storage.delete_prefix("builds/x/") == 1
    with pytest.raises(MissingKey):
        storage.open("builds/x/a.json")


def test_local_storage_that_cannot_write_raises_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "root"
    blocker.write_text("a file where the storage folder should be")
    with pytest.raises(StorageError, match="could not write"):
        LocalStorage(blocker).put_bytes("builds/x/a.json", b"{}")


def test_s3_storage_round_trip_over_http(s3_bucket) -> None:
    storage = S3Storage(s3_bucket.name, endpoint_url=s3_bucket.endpoint_url, region=s3_bucket.region)
    storage.put_bytes("builds/x/index.html", b"<!doctype html>")
    assert storage.exists("builds/x/index.html")
    assert not storage.exists("builds/x/missing.html")
    assert storage.size("builds/x/index.html") == 15
    assert storage.open("builds/x/index.html").read() == b"<!doctype html>"
    with pytest.raises(MissingKey):
        storage.open("builds/x/missing.html")
    assert storage.delete_prefix("builds/x/") == 1
    assert list(storage.keys("builds/")) == []


@pytest.fixture(params=["local", "s3"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStorage | S3Storage:
    """A local folder, or a bucket on moto's S3 server."""
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return S3Storage(bucket.name, endpoint_url=bucket.endpoint_url, region=bucket.region)
    return LocalStorage(tmp_path / "store")


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [(0, 16, b"SQLite format 3\x00"), (16, 19, b"abc"), (997, 1000, b"xyz"), (998, 5000, b"yz")],
    ids=["head", "middle", "tail", "stop-past-the-end"],
)
def test_open_range_reads_that_slice_only(
    either_store: LocalStorage | S3Storage, start: int, stop: int, expected: bytes
) -> None:
    either_store.put_bytes("builds/x/data/a.db", b"SQLite format 3\x00abc" + b"." * 978 + b"xyz")
    with either_store.open_range("builds/x/data/a.db", start, stop) as body:
        assert body.read(2) + body.read() == expected
        assert body.read() == b""


def test_open_range_refuses_spans_outside_the_key(either_store: LocalStorage | S3Storage) -> None:
    either_store.put_bytes("builds/x/a.json", b"{}")
    for start, stop in ((2, 3), (5, 10), (1, 1), (-1, 1)):
        with pytest.raises(ValueError):
            either_store.open_range("builds/x/a.json", start, stop)
    with pytest.raises(MissingKey):
        either_store.open_range("builds/x/missing.json", 0, 1)


def test_s3_storage_outage_is_retried_with_backoff_then_raises_a_storage_error(moto_s3: str) -> None:
    port = free_port()  # a port on loopback where nothing listens
    pauses: list[float] = []
    storage = S3Storage(
        "bucket", endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1", retry_budget=3, sleep=pauses.append
    )
    with pytest.raises(StorageError, match=r"gave up after \d+ tries"):
        storage.put_bytes("builds/x/index.html", b"x")
    # Backoff doubles from 0.5 s (with 20 % jitter) up to 8 s; the pauses never outgrow the budget.
    assert 0.4 <= pauses[0] <= 0.6 and all(b > a for a, b in itertools.pairwise(pauses[:4]))
    assert max(pauses) <= 8 * 1.2


@dataclass
class FlakyS3:
    """A loopback S3 stand-in that answers ``status`` to the first ``failures`` PUTs, then 200 OK;
    ``requests`` counts the PUTs it got, ``url`` is its endpoint."""

    failures: int
    status: int
    url: str = ""
    requests: int = 0


@pytest.fixture
def flaky_s3(moto_s3: str, loopback_server: Callable[..., LoopbackServer]) -> Callable[[int, int], FlakyS3]:
    """``flaky_s3(failures, status) -> FlakyS3`` on a loopback server (``moto_s3`` for the dummy credentials)."""

    def start(failures: int, status: int) -> FlakyS3:
        store = FlakyS3(failures, status)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                store.requests += 1
                failing = store.requests <= store.failures
                code = b"AccessDenied" if store.status == 403 else b"ServiceUnavailable"
                body = b"<Error><Code>" + code + b"</Code></Error>" if failing else b""
                self.send_response(store.status if failing else 200)
                self.send_header("ETag", '"0"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        store.url = loopback_server(Handler).url
        return store

    return start


def test_s3_storage_retries_5xx_answers_until_the_store_recovers(flaky_s3) -> None:
    server = flaky_s3(2, 503)
    pauses: list[float] = []
    storage = S3Storage("bucket", endpoint_url=server.url, region="us-east-1", retry_budget=30, sleep=pauses.append)
    storage.put_bytes("builds/x/index.html", b"<!doctype html>")
    assert server.requests == 3 and len(pauses) == 2


def test_s3_storage_does_not_retry_a_refusal(flaky_s3) -> None:
    server = flaky_s3(1, 403)
    storage = S3Storage("bucket", endpoint_url=server.url, region="us-east-1", retry_budget=30, sleep=lambda s: None)
    with pytest.raises(StorageError, match="AccessDenied"):
        storage.put_bytes("builds/x/index.html", b"x")
    assert server.requests == 1


def test_a_bundle_lands_in_s3_with_the_right_keys_and_content_types(
    s3_bucket, chinook: Path, pyodide_runtime: Path, wheel_cache: Path
) -> None:
    storage = S3Storage(s3_bucket.name, endpoint_url=s3_bucket.endpoint_url, region=s3_bucket.region)
    result = BuildDirector(
        BuildRequest(
            build_id="s3build000000001",
            database_path=chinook,
            database_name="chinook",
            title="Chinook",
            description="",
            plugins=("datasette-cluster-map",),
            datasette_version="0.65.5",
            source_sha256="1" * 64,
            runtime_dir=pyodide_runtime,
            cache_dir=wheel_cache,
        ),
        storage=storage,
        on_state=lambda state: None,
        log=lambda line: None,
    ).run()
    client = s3_bucket.client()
    listed = {obj["Key"] for obj in client.list_objects_v2(Bucket=s3_bucket.name)["Contents"]}
    copies = {copy.key for entry in result.manifest.files for copy in (entry.gzip, entry.brotli) if copy}
    listed_keys = {entry.key for entry in result.manifest.files}
    own = {"builds/s3build000000001/manifest.json", "builds/s3build000000001/download.zip"}
    assert listed_keys | copies | own == listed
    # A copy is its original's type, gzip- or br-encoded: what nginx passes on (deploy/nginx/content.conf).
    for original in (f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm", "builds/s3build000000001/data/chinook.db"):
        for suffix, encoding in ((".gz", "gzip"), (".br", "br")):
            head = client.head_object(Bucket=s3_bucket.name, Key=original + suffix)
            assert (head["ContentType"], head["ContentEncoding"]) == (content_type_for(original), encoding)
    identity = client.head_object(Bucket=s3_bucket.name, Key=f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm")
    assert "ContentEncoding" not in identity
    expected = {
        "builds/s3build000000001/index.html": "text/html; charset=utf-8",
        "builds/s3build000000001/sw.js": "text/javascript; charset=utf-8",
        "builds/s3build000000001/data/chinook.db": "application/vnd.sqlite3",
        "builds/s3build000000001/pyodide-lock.json": "application/json",
        f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm": "application/wasm",
        "builds/s3build000000001/download.zip": "application/zip",
    }
    for key, content_type in expected.items():
        assert client.head_object(Bucket=s3_bucket.name, Key=key)["ContentType"] == content_type, key
    wheel_keys = [k for k in listed if k.startswith("wheels/")]
    assert wheel_keys and all(
        client.head_object(Bucket=s3_bucket.name, Key=k)["ContentType"] == "application/zip" for k in wheel_keys
    )
