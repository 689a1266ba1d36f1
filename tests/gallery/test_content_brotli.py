"""Brotli copies on the content origin: ``<key>.br`` for readers that accept br, chosen by ``Accept-Encoding``.

The builder stores a Brotli copy where it beats the gzip one and lists it in the manifest's
``files`` (``"brotli": {"key", "size"}``); ``gallery.content.files.serve_key`` picks the copy
``choose_encoding`` names for a GET without ``Range`` (RFC 9110's q-values; br before gzip at
equal weight), streamed or (``CONTENT_ACCEL_REDIRECT``) redirected to nginx. The gzip side is
tests/gallery/test_content_gzip.py; nginx's, tests/gallery/test_nginx_content_origin.py.
"""

from __future__ import annotations

import gzip
import http.client
import json
from typing import Any

import brotli
import pytest

from builder.pyodide import PYODIDE_VERSION
from gallery.content.files import accept_encoding_qualities, choose_encoding

pytestmark = pytest.mark.django_db

RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}"
TEXT = b"export const loadPyodide = async (options) => options;\n" * 300
BROWSER_OVER_HTTPS = "gzip, deflate, br, zstd"


def store_copies(storage: Any, build_id: str, originals: dict[str, bytes], encodings: tuple[str, ...]) -> None:
    """Store ``originals`` with their ``encodings`` copies (``"gzip"``, ``"br"``), listed in the build's manifest."""
    manifest_key = f"builds/{build_id}/manifest.json"
    manifest = json.loads(storage.open(manifest_key).read())
    for entry in manifest["files"]:
        if entry["key"] in originals:
            data = originals[entry["key"]]
            storage.put_bytes(entry["key"], data)
            entry["size"] = len(data)
            if "gzip" in encodings:
                storage.put_bytes(entry["key"] + ".gz", copy := gzip.compress(data, mtime=0))
                entry["gzip"] = {"key": entry["key"] + ".gz", "size": len(copy)}
            if "br" in encodings:
                storage.put_bytes(entry["key"] + ".br", copy := brotli.compress(data))
                entry["brotli"] = {"key": entry["key"] + ".br", "size": len(copy)}
    storage.put_bytes(manifest_key, json.dumps(manifest).encode())


@pytest.fixture
def originals(build, bundle) -> dict[str, bytes]:
    """``{key: identity bytes}`` of a runtime module and the database."""
    return {
        f"{RUNTIME}/pyodide.mjs": TEXT,
        f"builds/{build.id}/data/chinook.db": bundle[f"builds/{build.id}/data/chinook.db"] + b"\x00" * 5000,
    }


@pytest.fixture
def compressed(build, storage, originals) -> dict[str, bytes]:
    """Both copies of ``originals``, as a build with Brotli copies stores them."""
    store_copies(storage, build.id, originals, ("gzip", "br"))
    return originals


@pytest.fixture
def paths(build) -> dict[str, str]:
    return {
        f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs": f"{RUNTIME}/pyodide.mjs",
        f"/_build/{build.id}/data/chinook.db": f"builds/{build.id}/data/chinook.db",
    }


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


DECODERS = {"br": brotli.decompress, "gzip": gzip.decompress, None: lambda data: data}


@pytest.mark.parametrize(
    ("header", "encoding"),
    [(BROWSER_OVER_HTTPS, "br"), ("br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip"),
     ("gzip, deflate", "gzip"), ("gzip;q=1, br;q=0.5", "gzip"), ("*", "br"), ("br;q=0, *", "gzip"),
     ("identity", None), ("br;q=0, gzip;q=0", None), ("gzip;q=0.5, br;q=0.5, identity", None)],
)  # fmt: skip
def test_the_copy_each_accept_encoding_asks_for_decodes_to_the_file(
    content_client, compressed, paths, header, encoding
):
    for path, key in paths.items():
        response = content_client.get(path, HTTP_ACCEPT_ENCODING=header)
        assert response.status_code == 200, path
        assert response.get("Content-Encoding") == encoding, (path, header)
        data = body(response)
        assert DECODERS[encoding](data) == compressed[key]
        assert response["Content-Length"] == str(len(data))
        assert response["Vary"] == "Accept-Encoding"


def test_each_encoding_has_its_own_etag_and_revalidates_it(content_client, compressed, paths):
    for path in paths:
        etags = {
            encoding: content_client.get(path, HTTP_ACCEPT_ENCODING=header)["ETag"]
            for encoding, header in (("br", "br"), ("gzip", "gzip"), ("identity", "identity"))
        }
        assert len(set(etags.values())) == 3, etags
        again = content_client.get(path, HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS, HTTP_IF_NONE_MATCH=etags["br"])
        assert again.status_code == 304
        assert content_client.get(path, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=etags["br"]).status_code == 200


def test_a_range_or_a_head_gets_the_identity_bytes(content_client, compressed, paths):
    for path, key in paths.items():
        ranged = content_client.get(path, HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS, HTTP_RANGE="bytes=0-15")
        assert "Content-Encoding" not in ranged
        assert body(ranged)[:16] == compressed[key][:16]
        head = content_client.head(path, HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS)
        assert "Content-Encoding" not in head
        assert head["Content-Length"] == str(len(compressed[key]))


def test_a_build_from_before_brotli_copies_keeps_serving_gzip_and_identity(content_client, build, storage, originals, paths):
    # Its manifest lists gzip copies and no brotli record: a reader that accepts br gets gzip.
    store_copies(storage, build.id, originals, ("gzip",))
    for path, key in paths.items():
        response = content_client.get(path, HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS)
        assert response["Content-Encoding"] == "gzip"
        assert gzip.decompress(body(response)) == originals[key]
    # A file with no copy at all (sw.js here) is identity, whatever the reader accepts.
    listed = content_client.get("/sw.js", HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS)
    assert "Content-Encoding" not in listed and listed["Vary"] == "Accept-Encoding"


def test_with_accel_redirect_nginx_is_sent_to_the_brotli_copy(content_client, compressed, paths, settings):
    settings.CONTENT_ACCEL_REDIRECT = "/_s3/"
    for path, key in paths.items():
        response = content_client.get(path, HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS)
        assert response["X-Accel-Redirect"] == f"/_s3/{key}.br"
        assert response["Content-Encoding"] == "br"
        assert response["Vary"] == "Accept-Encoding"
        assert response.content == b""
        refused = content_client.get(path, HTTP_ACCEPT_ENCODING="br;q=0, gzip")
        assert refused["X-Accel-Redirect"] == f"/_s3/{key}.gz" and refused["Content-Encoding"] == "gzip"
        ranged = content_client.get(path, HTTP_ACCEPT_ENCODING=BROWSER_OVER_HTTPS, HTTP_RANGE="bytes=0-15")
        assert ranged["X-Accel-Redirect"] == f"/_s3/{key}" and "Content-Encoding" not in ranged


def test_over_http_a_client_gets_the_encoding_it_asked_for(live_gallery_server, gallery, compressed, paths):
    """A plain HTTP client against the live server, as a browser's network stack sees the content origin."""
    host = f"{gallery.id}.localhost:{live_gallery_server.port}"
    for path, key in paths.items():
        for header, encoding in (("br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip"), (BROWSER_OVER_HTTPS, "br")):
            connection = http.client.HTTPConnection("127.0.0.1", live_gallery_server.port, timeout=30)
            try:
                connection.request("GET", path, headers={"Host": host, "Accept-Encoding": header})
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
            assert response.status == 200, (path, data[:200])
            assert response.getheader("Content-Encoding") == encoding, (path, header)
            assert DECODERS[encoding](data) == compressed[key]
            assert response.getheader("Vary") == "Accept-Encoding"


# --- The chooser (RFC 9110, section 12.5.3) ----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "stored", "chosen"),
    [
        # What browsers send: br over HTTPS (and on localhost), gzip over plain HTTP.
        (BROWSER_OVER_HTTPS, {"br", "gzip"}, "br"),
        ("gzip, deflate", {"br", "gzip"}, "gzip"),
        # Only stored copies can be chosen.
        (BROWSER_OVER_HTTPS, {"gzip"}, "gzip"),
        (BROWSER_OVER_HTTPS, set(), "identity"),
        ("br", {"gzip"}, "identity"),
        # No header, or an empty one: identity (an empty value asks for no coding).
        (None, {"br", "gzip"}, "identity"),
        ("", {"br", "gzip"}, "identity"),
        # q=0 means "not acceptable", however it is spelled.
        ("br;q=0, gzip", {"br", "gzip"}, "gzip"),
        ("br;q=0.000, gzip", {"br", "gzip"}, "gzip"),
        ("br; q=0 , gzip", {"br", "gzip"}, "gzip"),
        ("BR;Q=0, GZIP", {"br", "gzip"}, "gzip"),
        ("gzip;q=0, br;q=0", {"br", "gzip"}, "identity"),
        # The highest q-value wins; br before gzip at equal weight.
        ("gzip;q=1.0, br;q=0.9", {"br", "gzip"}, "gzip"),
        ("gzip;q=0.5, br;q=0.5", {"br", "gzip"}, "br"),
        ("gzip, br", {"br", "gzip"}, "br"),
        # "*" covers the codings not named; a named coding overrides it.
        ("*", {"br", "gzip"}, "br"),
        ("br;q=0, *", {"br", "gzip"}, "gzip"),
        ("*;q=0.1", {"gzip"}, "gzip"),
        ("gzip;q=0, *", {"gzip"}, "identity"),
        # identity: acceptable unless excluded; named, it weighs its q-value; unnamed, it comes last.
        ("identity", {"br", "gzip"}, "identity"),
        ("gzip;q=0.5, identity", {"gzip"}, "identity"),
        ("gzip;q=0.001", {"gzip"}, "gzip"),
        ("identity;q=0, gzip;q=0.2", {"gzip"}, "gzip"),
        # Nothing acceptable (identity excluded too): identity rather than a 406.
        ("*;q=0", {"br", "gzip"}, "identity"),
        ("identity;q=0", {"br", "gzip"}, "identity"),
        # x-gzip is gzip (RFC 9110, section 8.4.1.3); codings the origin never stores are ignored.
        ("x-gzip", {"gzip"}, "gzip"),
        ("zstd, deflate, compress", {"br", "gzip"}, "identity"),
        # Malformed q-values count as 0, so they never widen what is sent; stray commas are ignored.
        ("br;q=bad, gzip", {"br", "gzip"}, "gzip"),
        ("br;q=1.5, gzip", {"br", "gzip"}, "gzip"),
        ("br;q=-1, gzip;q=0.3", {"br", "gzip"}, "gzip"),
        ("br;q=0.12345, gzip", {"br", "gzip"}, "gzip"),
        (", ,br,,", {"br", "gzip"}, "br"),
    ],
)
def test_the_coding_is_chosen_by_q_value_then_by_size(header, stored, chosen):
    assert choose_encoding(header, stored) == chosen


def test_the_q_values_are_read_per_coding():
    assert accept_encoding_qualities("gzip, br;q=0.5, *;q=0") == {"gzip": 1.0, "br": 0.5, "*": 0.0}
    assert accept_encoding_qualities("x-gzip;q=0.3") == {"gzip": 0.3}
    assert accept_encoding_qualities("x-gzip;q=0.3, gzip;q=0.8") == {"gzip": 0.8}
