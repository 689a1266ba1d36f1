"""Self-host download: /_download/<build-id>.zip on a gallery's live and pinned origins."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

from gallery.models import Build, BuildReview, BuildState, Gallery
from gallery.storage import get_storage

pytestmark = pytest.mark.django_db

LICENSED = {
    "license": "CC BY 4.0",
    "license_url": "https://creativecommons.org/licenses/by/4.0/",
    "source": "Chinook sample database",
    "source_url": "https://github.com/lerocha/chinook-database",
}


def download(client, host: str, build_id: str):
    response = client.get(f"/_download/{build_id}.zip", HTTP_HOST=host)
    return response, (b"".join(response.streaming_content) if response.streaming else response.content)


def live_host(gallery: Gallery) -> str:
    return f"{gallery.id}.localhost:8000"


def pinned_host(gallery: Gallery, build_id: str) -> str:
    return f"{gallery.id}--{build_id}.localhost:8000"


@pytest.fixture
def licensed_bundle(build: Build, make_bundle) -> dict[str, bytes]:
    return make_bundle(build, metadata=LICENSED)


def test_the_download_is_the_bundle_laid_out_as_a_static_site_with_a_readme(
    client, gallery, build, licensed_bundle
):
    response, data = download(client, live_host(gallery), build.id)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response.cookies

    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = json.loads(licensed_bundle[f"builds/{build.id}/manifest.json"])
    expected = {entry["url"].removeprefix("/"): licensed_bundle[entry["key"]] for entry in manifest["files"]}
    assert sorted(expected) == [
        f"_build/{build.id}/data/chinook.db",
        f"_build/{build.id}/pyodide-lock.json",
        "_runtime/pyodide-314.0.7/pyodide.asm.wasm",
        "_runtime/pyodide-314.0.7/pyodide.mjs",
        "_runtime/pyodide-314.0.7/python_stdlib.zip",
        f"_wheels/{'ab' * 32}/datasette-0.65.5-py3-none-any.whl",
        "index.html",
        "sw.js",
    ]
    assert archive.namelist() == [*expected, "README.txt"]
    for name, content in expected.items():
        assert archive.getinfo(name).file_size == len(content)
        assert archive.read(name) == content
    assert b"private" not in data  # the private upload is never part of it

    readme = archive.read("README.txt").decode()
    assert "python3 -m http.server 8000" in readme
    assert "http://localhost:8000/" in readme
    assert "Pyodide 314.0.7" in readme
    assert "Datasette 0.65.5 with its dependencies; plugins: datasette-pretty-json" in readme
    assert f"_build/{build.id}/pyodide-lock.json" in readme
    assert f"_build/{build.id}/data/chinook.db  the database (" in readme
    assert "Licence: CC BY 4.0 <https://creativecommons.org/licenses/by/4.0/>" in readme
    assert "Source: Chinook sample database <https://github.com/lerocha/chinook-database>" in readme


def test_a_readme_without_licence_metadata_says_nothing_about_it(client, gallery, build, bundle):
    _, data = download(client, live_host(gallery), build.id)
    readme = zipfile.ZipFile(io.BytesIO(data)).read("README.txt").decode()
    assert "Licence" not in readme
    assert "python3 -m http.server 8000" in readme


def test_a_large_file_is_streamed_in_pieces_never_whole(client, gallery, build, bundle, storage, remote_storage):
    database = os.urandom(3 * 1024 * 1024)  # random: deflate cannot shrink it
    key = f"builds/{build.id}/data/chinook.db"
    storage.put_bytes(key, database)
    manifest = json.loads(bundle[f"builds/{build.id}/manifest.json"])
    for entry in manifest["files"]:
        if entry["key"] == key:
            entry["size"] = len(database)
    storage.put_bytes(f"builds/{build.id}/manifest.json", json.dumps(manifest).encode())

    response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    pieces = list(response.streaming_content)
    assert len(pieces) >= 10
    assert max(len(piece) for piece in pieces) < 1024 * 1024
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.read(f"_build/{build.id}/data/chinook.db") == database


def test_a_pinned_origin_offers_its_own_build_and_no_other(client, gallery, build, bundle, make_build, make_bundle):
    older = make_build(review=BuildReview.APPROVED)
    make_bundle(older)
    response, data = download(client, pinned_host(gallery, older.id), older.id)
    assert response.status_code == 200
    assert f"_build/{older.id}/data/chinook.db" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    other, _ = download(client, pinned_host(gallery, older.id), build.id)
    assert other.status_code == 404
    # The gallery's own origin offers every ready build of it.
    from_live, _ = download(client, live_host(gallery), older.id)
    assert from_live.status_code == 200


@pytest.mark.parametrize(
    "case", ["failed build", "another galleries build", "build waiting for review", "unknown build", "not a zip name"]
)
def test_only_an_approved_ready_build_of_the_gallery_can_be_downloaded(
    client, gallery, other_gallery, build, bundle, make_build, make_bundle, case
):
    if case in ("failed build", "another galleries build", "build waiting for review"):
        # Its files are all there: only the build's state, review or gallery stands in the way.
        refused = {
            "failed build": lambda: make_build(BuildState.FAILED, review=BuildReview.APPROVED),
            "another galleries build": lambda: make_build(of=other_gallery, review=BuildReview.APPROVED),
            "build waiting for review": lambda: make_build(),
        }[case]()
        make_bundle(refused)
        path = f"/_download/{refused.id}.zip"
    elif case == "unknown build":
        path = "/_download/0123456789abcdef.zip"
    else:
        path = f"/_download/{build.id}.tar"
    response = client.get(path, HTTP_HOST=live_host(gallery))
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("state", "status", "text"),
    [
        (Gallery.ModerationState.PENDING, 404, b"not published"),
        (Gallery.ModerationState.REJECTED, 404, b"not published"),
        (Gallery.ModerationState.TAKEN_DOWN, 410, b"taken down"),
    ],
)
def test_a_gallery_that_is_not_public_offers_no_download(client, gallery, build, bundle, state, status, text):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    for host in (live_host(gallery), pinned_host(gallery, build.id)):
        response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=host)
        assert response.status_code == status
        assert text in response.content


def test_a_bundle_with_a_missing_file_is_refused_before_anything_is_sent(client, gallery, build, bundle, storage):
    (storage.root / f"builds/{build.id}/pyodide-lock.json").unlink()
    response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 404
    assert not response.streaming
    assert b"files are incomplete on the server" in response.content


def test_a_manifest_naming_a_private_upload_is_refused(client, gallery, build, bundle, storage):
    manifest = json.loads(bundle[f"builds/{build.id}/manifest.json"])
    manifest["files"].append({"key": "uploads/x/source.db", "url": "/source.db", "size": 24, "sha256": "0" * 64})
    storage.put_bytes(f"builds/{build.id}/manifest.json", json.dumps(manifest).encode())
    response, data = download(client, live_host(gallery), build.id)
    assert response.status_code == 404
    assert b"private" not in data


def test_a_head_request_gets_the_download_headers_and_no_body(client, gallery, build, bundle):
    response = client.head(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    assert response.content == b""


def test_a_storage_outage_answers_503(client, gallery, build, bundle, storage_outage):
    response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 503
    assert b"Storage is unavailable, try again shortly" in response.content


def test_the_download_streams_from_s3_as_from_a_local_folder(client, gallery, build, bundle, s3_bucket):
    store = get_storage()
    for key, content in bundle.items():
        store.put_bytes(key, content)
    assert store.local_path(f"builds/{build.id}/manifest.json") is None
    response, data = download(client, live_host(gallery), build.id)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.read(f"_build/{build.id}/data/chinook.db") == bundle[f"builds/{build.id}/data/chinook.db"]
    assert "README.txt" in archive.namelist()
