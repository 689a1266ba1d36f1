"""Precompressed copies on the content origin: ``<key>.gz`` for readers that accept gzip.

The builder stores a gzip copy of compressible files and lists it in the manifest's ``files``
(``"gzip": {"key", "size"}``); ``gallery.content.files.serve_key`` picks it for a GET without
``Range`` whose ``Accept-Encoding`` allows gzip (and no Brotli copy it prefers:
test_content_brotli.py), streamed or (``CONTENT_ACCEL_REDIRECT``) redirected to nginx. The
nginx side is tested in tests/deploy/test_production_shape.py.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from urllib.parse import urlsplit

import pytest

from builder.download import store_bundle_zip
from builder.pyodide import PYODIDE_VERSION
from gallery.content.files import choose_encoding
from gallery.content.preview import preview_url

pytestmark = pytest.mark.django_db

RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}"
WHEEL_SHA = "ab" * 32
TEXT = b"export const loadPyodide = 1;\n" * 200


@pytest.fixture
def gzipped(build, bundle, storage) -> dict[str, bytes]:
    """Gzip copies of the bundle's runtime module and database, listed in its manifest: ``{key: identity bytes}``."""
    originals = {
        f"{RUNTIME}/pyodide.mjs": TEXT,
        f"builds/{build.id}/data/chinook.db": bundle[f"builds/{build.id}/data/chinook.db"] + b"\x00" * 5000,
    }
    manifest_key = f"builds/{build.id}/manifest.json"
    manifest = json.loads(storage.open(manifest_key).read())
    for entry in manifest["files"]:
        if entry["key"] in originals:
            data = originals[entry["key"]]
            copy = gzip.compress(data, mtime=0)
            storage.put_bytes(entry["key"], data)
            storage.put_bytes(entry["key"] + ".gz", copy)
            entry["size"] = len(data)
            entry["gzip"] = {"key": entry["key"] + ".gz", "size": len(copy)}
    storage.put_bytes(manifest_key, json.dumps(manifest).encode())
    return originals


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def paths(build) -> dict[str, str]:
    return {
        f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs": f"{RUNTIME}/pyodide.mjs",
        f"/_build/{build.id}/data/chinook.db": f"builds/{build.id}/data/chinook.db",
    }


def test_a_reader_that_accepts_gzip_gets_the_stored_copy_with_the_originals_type(content_client, build, gzipped, paths):
    for path, key in paths.items():
        identity = content_client.get(path)
        response = content_client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate, br, zstd")
        assert response.status_code == 200, path
        assert response["Content-Encoding"] == "gzip"
        assert gzip.decompress(body(response)) == gzipped[key]
        assert response["Content-Length"] == str(len(gzip.compress(gzipped[key], mtime=0)))
        assert response["Content-Type"] == identity["Content-Type"]
        assert response["Vary"] == "Accept-Encoding"
        assert response["ETag"] != identity["ETag"]
        # Each ETag revalidates its own representation.
        again = content_client.get(path, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 304
        assert content_client.get(path, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_ACCEPT_ENCODING": "identity"}, {"HTTP_ACCEPT_ENCODING": "br, gzip;q=0"},
     {"HTTP_ACCEPT_ENCODING": "gzip", "HTTP_RANGE": "bytes=0-15"}],
    ids=["no-accept-encoding", "identity", "gzip-refused", "range"],
)  # fmt: skip
def test_identity_without_gzip_in_accept_encoding_or_with_a_range(content_client, gzipped, paths, headers):
    for path, key in paths.items():
        response = content_client.get(path, **headers)
        assert response.status_code == (206 if "HTTP_RANGE" in headers else 200), path
        assert "Content-Encoding" not in response
        assert body(response) == (gzipped[key][:16] if "HTTP_RANGE" in headers else gzipped[key])
        assert not body(response).startswith(b"\x1f\x8b")
        assert response["Vary"] == "Accept-Encoding"


def test_head_gets_the_identity_size(content_client, gzipped, paths):
    for path, key in paths.items():
        response = content_client.head(path, HTTP_ACCEPT_ENCODING="gzip")
        assert "Content-Encoding" not in response
        assert response["Content-Length"] == str(len(gzipped[key]))


def test_files_without_a_copy_are_identity_and_incompressible_ones_do_not_vary(content_client, build, gzipped):
    listed = content_client.get("/sw.js", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in listed and listed["Vary"] == "Accept-Encoding"
    wheel = content_client.get(f"/_wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl", HTTP_ACCEPT_ENCODING="gzip")
    assert wheel.status_code == 200
    assert "Content-Encoding" not in wheel and "Vary" not in wheel


def test_with_accel_redirect_nginx_is_sent_to_the_copy(content_client, build, gzipped, paths, settings):
    settings.CONTENT_ACCEL_REDIRECT = "/_s3/"
    for path, key in paths.items():
        response = content_client.get(path, HTTP_ACCEPT_ENCODING="gzip")
        assert response["X-Accel-Redirect"] == f"/_s3/{key}.gz"
        assert response["Content-Encoding"] == "gzip"
        assert response["Vary"] == "Accept-Encoding"
        assert response.content == b""
        ranged = content_client.get(path, HTTP_ACCEPT_ENCODING="gzip", HTTP_RANGE="bytes=0-15")
        assert ranged["X-Accel-Redirect"] == f"/_s3/{key}"
        assert "Content-Encoding" not in ranged
        plain = content_client.get(path)
        assert plain["X-Accel-Redirect"] == f"/_s3/{key}" and "Content-Encoding" not in plain


def test_a_preview_serves_the_copy_too(client, build, gzipped):
    host = urlsplit(preview_url(build)).netloc
    response = client.get(f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs", HTTP_HOST=host, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"].startswith("private")


@pytest.mark.parametrize(
    ("header", "allowed"),
    [("gzip", True), ("gzip, deflate, br", True), ("GZIP;q=0.5", True), ("x-gzip", True), ("*", True),
     ("", False), ("identity", False), ("br", False), ("gzip;q=0", False), ("gzip;q=0.0, *", False),
     ("*;q=0", False), ("br, *;q=0.1", True), ("gzip;q=bad", False)],
)  # fmt: skip
def test_accept_encoding_is_read_with_its_q_values(header, allowed):
    # A build with gzip copies only (the Brotli side: test_content_brotli.py).
    assert (choose_encoding(header, {"gzip"}) == "gzip") is allowed


def test_the_self_host_download_holds_the_identity_files_only(content_client, build, gzipped, storage):
    # Made as a build makes it: from the manifest that lists the gzip copies.
    store_bundle_zip(storage, build.id, build.created_at)
    response = content_client.get(f"/_download/{build.id}.zip", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert "Content-Encoding" not in response
    with zipfile.ZipFile(io.BytesIO(body(response))) as archive:
        names = archive.namelist()
        assert not [name for name in names if name.endswith(".gz")]
        assert archive.read(f"_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs") == TEXT
