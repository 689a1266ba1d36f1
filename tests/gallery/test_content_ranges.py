"""Byte ranges on the content origin (RFC 9110, section 14): a reader's browser reads a big database lazily.

``gallery.content.files.serve_key`` answers a GET with one byte range ``206 Partial Content`` with
those bytes only (``Storage.open_range``), a range past the end ``416``, and anything it may
ignore (several ranges, a malformed header, an ``If-Range`` naming another version) with the
whole file, always the identity bytes. Each case runs against the three stores Django reads: a
local folder, a folder without local paths (streamed, as from S3), and moto's S3 server. With
``CONTENT_ACCEL_REDIRECT`` nginx forwards the Range to S3: tests/deploy/test_production_shape.py.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import brotli
import pytest

from builder.storage import S3Storage, Storage
from gallery.content.files import etag
from gallery.content.paths import IMMUTABLE
from gallery.models import Gallery
from gallery.storage import get_storage

pytestmark = pytest.mark.django_db

#: A database bigger than one 64 KiB chunk of the stream, every byte telling its offset apart.
SIZE = 200_000
DATABASE = b"SQLite format 3\x00" + bytes(index % 251 for index in range(SIZE - 16))


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture(params=["local", "remote", "s3"])
def store(request, storage, bundle) -> Storage:
    """The store Django reads the bundle from: ``storage`` (a local folder), ``remote_storage``, or a moto bucket."""
    if request.param == "remote":
        return request.getfixturevalue("remote_storage")
    if request.param == "s3":
        request.getfixturevalue("s3_bucket")
        s3 = get_storage()
        assert isinstance(s3, S3Storage)
        for key, data in bundle.items():
            s3.put_bytes(key, data)
        return s3
    return storage


@pytest.fixture
def database(build, store) -> tuple[str, str]:
    """``(url, key)`` of the build's database: ``DATABASE``, with gzip and Brotli copies listed in its manifest."""
    key = f"builds/{build.id}/data/chinook.db"
    manifest_key = f"builds/{build.id}/manifest.json"
    manifest = json.loads(store.open(manifest_key).read())
    for entry in manifest["files"]:
        if entry["key"] == key:
            entry["size"] = SIZE
            # Quality 1: any valid copy will do, and quality 11 takes a fifth of a second per test.
            fast_brotli = lambda data: brotli.compress(data, quality=1)
            for suffix, field, compress in ((".gz", "gzip", gzip.compress), (".br", "brotli", fast_brotli)):
                store.put_bytes(key + suffix, copy := compress(DATABASE))
                entry[field] = {"key": key + suffix, "size": len(copy)}
    store.put_bytes(key, DATABASE)
    store.put_bytes(manifest_key, json.dumps(manifest).encode())
    return f"/_build/{build.id}/data/chinook.db", key


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=0-15", 0, 16), ("bytes=1000-70999", 1000, 71000), ("bytes=-100", SIZE - 100, SIZE),
     ("bytes=100-", 100, SIZE), ("bytes=199999-199999", SIZE - 1, SIZE), ("bytes=65536-999999999", 65536, SIZE),
     ("bytes=-999999", 0, SIZE), ("BYTES = 5 - 9", 5, 10)],
    ids=["first-16", "across-chunks", "suffix", "open-ended", "last-byte", "end-past-the-file", "suffix-past-the-file",
         "spaces-and-case"],
)  # fmt: skip
def test_one_range_gets_206_with_exactly_those_identity_bytes(content_client, database, header, start, stop):
    url, key = database
    # A browser asks for br and gzip too: a range is of the file itself, never of a stored copy.
    response = content_client.get(url, HTTP_RANGE=header, HTTP_ACCEPT_ENCODING="gzip, deflate, br, zstd")
    assert response.status_code == 206
    assert body(response) == DATABASE[start:stop]
    assert response["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert response["Content-Length"] == str(stop - start)
    assert response["Accept-Ranges"] == "bytes"
    assert "Content-Encoding" not in response
    assert response["Content-Type"] == "application/vnd.sqlite3"
    assert response["ETag"] == etag(key)
    assert response["Cache-Control"] == IMMUTABLE
    assert response["Vary"] == "Accept-Encoding"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("header", ["bytes=200000-", "bytes=200000-200100", "bytes=999999-"])
def test_a_range_that_starts_past_the_end_gets_416_with_the_size(content_client, database, header):
    url, key = database
    response = content_client.get(url, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert body(response) == b""
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == etag(key)


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_RANGE": "bytes=0-1,5-6"}, {"HTTP_RANGE": "bytes=0-15, -100"}, {"HTTP_RANGE": "bytes=5-3"},
     {"HTTP_RANGE": "bytes=abc"}, {"HTTP_RANGE": "items=0-15"}, {"HTTP_RANGE": "0-15"},
     {"HTTP_RANGE": "bytes=0-15", "HTTP_IF_RANGE": '"another-version"'},
     {"HTTP_RANGE": "bytes=0-15", "HTTP_IF_RANGE": "Wed, 21 Oct 2015 07:28:00 GMT"}],
    ids=["two-ranges", "first-and-suffix", "backwards", "not-a-number", "other-unit", "no-unit", "if-range-other-etag",
         "if-range-date"],
)  # fmt: skip
def test_a_range_it_may_ignore_gets_the_whole_identity_file(content_client, database, headers):
    url, key = database
    response = content_client.get(url, HTTP_ACCEPT_ENCODING="gzip, br", **headers)
    assert response.status_code == 200
    assert body(response) == DATABASE
    assert response["Content-Length"] == str(SIZE)
    assert "Content-Range" not in response and "Content-Encoding" not in response
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == etag(key)


def test_if_range_is_compared_strongly_with_the_etag(content_client, database):
    url, key = database
    same = content_client.get(url, HTTP_RANGE="bytes=-100", HTTP_IF_RANGE=etag(key))
    assert same.status_code == 206 and body(same) == DATABASE[-100:]
    weak = content_client.get(url, HTTP_RANGE="bytes=-100", HTTP_IF_RANGE="W/" + etag(key))
    assert weak.status_code == 200 and body(weak) == DATABASE


def test_whole_files_and_head_say_ranges_are_accepted_and_304_is_unchanged(content_client, database):
    url, key = database
    copy = content_client.get(url, HTTP_ACCEPT_ENCODING="br")
    assert copy.status_code == 200 and copy["Content-Encoding"] == "br" and copy["Accept-Ranges"] == "bytes"
    assert brotli.decompress(body(copy)) == DATABASE
    head = content_client.head(url, HTTP_RANGE="bytes=0-15")
    assert head.status_code == 200 and head["Content-Length"] == str(SIZE) and head["Accept-Ranges"] == "bytes"
    assert "Content-Range" not in head and head.content == b""
    # If-None-Match is decided before Range (RFC 9110, section 13.2.2).
    unchanged = content_client.get(url, HTTP_RANGE="bytes=0-15", HTTP_IF_NONE_MATCH=etag(key))
    assert unchanged.status_code == 304 and "Accept-Ranges" not in unchanged and "Content-Range" not in unchanged


def test_a_range_of_a_missing_file_is_404(content_client, database, build):
    for url in (f"/_build/{build.id}/data/no-such.db", f"/_build/{build.id}/data"):
        response = content_client.get(url, HTTP_RANGE="bytes=0-15")
        assert response.status_code == 404, url


def test_the_self_host_zip_answers_a_range_as_an_attachment(content_client, store, build, bundle):
    """A download manager resuming the zip (each ranged GET counts against the download limit)."""
    zipped = bundle[f"builds/{build.id}/download.zip"]
    response = content_client.get(f"/_download/{build.id}.zip", HTTP_RANGE="bytes=10-")
    assert response.status_code == 206
    assert body(response) == zipped[10:]
    assert response["Content-Range"] == f"bytes 10-{len(zipped) - 1}/{len(zipped)}"
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    assert response["Cache-Control"] == "no-store"


def test_with_accel_redirect_the_range_is_left_to_nginx_and_s3(content_client, database, settings: Any):
    settings.CONTENT_ACCEL_REDIRECT = "/_s3/"
    url, key = database
    response = content_client.get(url, HTTP_RANGE="bytes=0-15", HTTP_ACCEPT_ENCODING="br")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_s3/{key}"
    assert response["Accept-Ranges"] == "bytes"
    assert "Content-Range" not in response and response.content == b""


@pytest.mark.parametrize(
    ("state", "status"), [(Gallery.ModerationState.PENDING, 404), (Gallery.ModerationState.TAKEN_DOWN, 410)]
)
def test_a_range_of_a_gallery_moderation_has_not_allowed_is_not_served(content_client, database, gallery, state, status):
    # Ranges go through the same build checks as whole files: a lazy database's blocks too.
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    url, _key = database
    response = content_client.get(url, HTTP_RANGE="bytes=0-15")
    assert response.status_code == status
    assert b"SQLite format 3" not in body(response)
