"""The content origin: which storage key each path of <gallery-id>.localhost maps to, and its headers."""

from __future__ import annotations

import pytest
from django.test import Client

from gallery.content import IMMUTABLE, killswitch_source
from gallery.models import Build, BuildState, Gallery

pytestmark = pytest.mark.django_db

# As written by the ``bundle`` fixture in conftest.py.
RUNTIME = "runtime/pyodide-314.0.7"
WHEEL_SHA = "ab" * 32
DEEP_LINKS = [
    "/",
    "/chinook",
    "/chinook/album?_sort=title",
    "/-/versions",
    "/chinook.json",
    "/_foo/bar",
    "/sw.js.map",
]


def assert_hardened(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "X-Frame-Options" not in response
    assert response["Content-Security-Policy"] == "frame-ancestors *", "any site may embed a gallery"
    assert not response.cookies


def body(response) -> bytes:
    return (
        b"".join(response.streaming_content) if response.streaming else response.content
    )


@pytest.mark.parametrize("path", DEEP_LINKS)
def test_every_app_path_gets_the_bootstrap_page_of_the_live_build(
    content_client, bundle, build, path
):
    response = content_client.get(path)
    assert response.status_code == 200
    assert body(response) == bundle[f"builds/{build.id}/index.html"]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert "Content-Disposition" not in response
    assert_hardened(response)


def test_the_service_worker_is_the_live_builds_and_may_control_the_whole_origin(
    content_client, bundle, build
):
    response = content_client.get("/sw.js")
    assert response.status_code == 200
    assert body(response) == bundle[f"builds/{build.id}/sw.js"]
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["Service-Worker-Allowed"] == "/"
    assert_hardened(response)


@pytest.mark.parametrize(
    ("path", "key", "content_type"),
    [
        (
            "/_runtime/pyodide-314.0.7/pyodide.asm.wasm",
            f"{RUNTIME}/pyodide.asm.wasm",
            "application/wasm",
        ),
        (
            "/_runtime/pyodide-314.0.7/pyodide.mjs",
            f"{RUNTIME}/pyodide.mjs",
            "text/javascript; charset=utf-8",
        ),
        (
            "/_runtime/pyodide-314.0.7/python_stdlib.zip",
            f"{RUNTIME}/python_stdlib.zip",
            "application/zip",
        ),
        (
            f"/_wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl",
            f"wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl",
            "application/zip",
        ),
        (
            "/_build/{live}/pyodide-lock.json",
            "builds/{live}/pyodide-lock.json",
            "application/json",
        ),
        (
            "/_build/{live}/data/chinook.db",
            "builds/{live}/data/chinook.db",
            "application/vnd.sqlite3",
        ),
    ],
)
def test_shared_and_build_files_are_immutable_with_the_content_type_of_their_role(
    content_client, bundle, build, path, key, content_type
):
    response = content_client.get(path.format(live=build.id))
    key = key.format(live=build.id)
    assert response.status_code == 200
    assert body(response) == bundle[key]
    assert response["Content-Type"] == content_type
    assert response["Cache-Control"] == IMMUTABLE
    assert response["Content-Length"] == str(len(bundle[key]))
    assert_hardened(response)


def test_files_stream_from_a_store_without_local_paths_as_from_s3(
    content_client, bundle, build, remote_storage
):
    response = content_client.get("/_runtime/pyodide-314.0.7/pyodide.asm.wasm")
    assert response.status_code == 200
    assert response.streaming
    assert body(response) == bundle[f"{RUNTIME}/pyodide.asm.wasm"]
    assert response["Content-Length"] == str(len(bundle[f"{RUNTIME}/pyodide.asm.wasm"]))
    assert response["Content-Type"] == "application/wasm"


def test_a_head_request_gets_headers_and_no_body(content_client, bundle, build):
    response = content_client.head("/chinook/album")
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(
        len(bundle[f"builds/{build.id}/index.html"])
    )


def test_an_unchanged_file_is_revalidated_with_304(content_client, bundle, build):
    first = content_client.get("/sw.js")
    again = content_client.get("/sw.js", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert_hardened(again)


def test_another_builds_files_are_not_served(content_client, bundle, build, gallery):
    older = Build.objects.create(
        gallery=gallery,
        state=BuildState.READY,
        source_key="uploads/x/source.db",
        source_sha256="0" * 64,
        source_bytes=1,
    )
    response = content_client.get(f"/_build/{older.id}/pyodide-lock.json")
    assert response.status_code == 404
    assert_hardened(response)


@pytest.mark.parametrize(
    "path",
    [
        "/_runtime/../uploads/x/source.db",
        "/_runtime/pyodide-314.0.7/../../uploads/x/source.db",
        "/_runtime/%2e%2e/uploads/x/source.db",
        "/_build/{live}/../../uploads/x/source.db",
        "/_build/{live}/data/../../../uploads/x/source.db",
        f"/_wheels/{WHEEL_SHA}/../../uploads/x/source.db",
        "/_wheels/..%2f..%2fuploads/x/source.db",
        "/_runtime//etc/passwd",
        "/_runtime/",
        "/_build/{live}/",
        "/_runtime/pyodide-314.0.7",
        "/_runtime/pyodide-314.0.7/missing.js",
    ],
)
def test_paths_outside_the_bundle_are_not_found(content_client, bundle, build, path):
    response = content_client.get(path.format(live=build.id))
    assert response.status_code == 404
    assert b"private" not in body(response)
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert_hardened(response)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_galleries_are_read_only(content_client, bundle, method):
    response = getattr(content_client, method)("/chinook")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert_hardened(response)


@pytest.mark.parametrize(
    "host",
    ["abcdefghijkl.localhost:8000", "not-a-gallery.localhost", "a.b.localhost:8000"],
)
def test_an_unknown_gallery_address_says_there_is_no_gallery(client, host):
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"No gallery at this address" in response.content
    assert_hardened(response)


@pytest.mark.parametrize(
    "state", [Gallery.ModerationState.PENDING, Gallery.ModerationState.REJECTED]
)
def test_a_gallery_not_approved_is_not_published(
    content_client, bundle, gallery, state
):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    for path in ("/", "/sw.js", "/_runtime/pyodide-314.0.7/pyodide.mjs"):
        response = content_client.get(path)
        assert response.status_code == 404
        assert b"This gallery is not published (yet)" in response.content
        assert_hardened(response)


def test_an_approved_gallery_without_a_live_build_is_not_published(
    content_client, gallery
):
    response = content_client.get("/")
    assert response.status_code == 404
    assert b"This gallery is not published (yet)" in response.content


def test_a_taken_down_gallery_is_gone_and_its_service_worker_is_the_kill_switch(
    content_client, bundle, gallery
):
    Gallery.objects.filter(pk=gallery.pk).update(
        moderation_state=Gallery.ModerationState.TAKEN_DOWN
    )
    for path in (
        "/",
        "/chinook/album",
        f"/_build/{gallery.live_build_id}/data/chinook.db",
    ):
        gone = content_client.get(path)
        assert gone.status_code == 410
        assert b"This gallery was taken down" in gone.content
        assert_hardened(gone)
    worker = content_client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.content == killswitch_source()
    assert worker["Content-Type"] == "text/javascript; charset=utf-8"
    assert worker["Cache-Control"] == "no-cache"
    assert_hardened(worker)


def test_a_storage_outage_answers_503(content_client, bundle, storage_outage):
    response = content_client.get("/chinook")
    assert response.status_code == 503
    assert b"Storage is unavailable, try again shortly" in response.content
    assert_hardened(response)


def test_a_missing_bootstrap_page_is_404_not_an_error(content_client, build, storage):
    response = content_client.get("/")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/sw.js",
        "/_build/{live}/data/chinook.db",
        "/_runtime/pyodide-314.0.7/pyodide.mjs",
        f"/_wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl",
        "/uploads/x/source.db",
    ],
)
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "localhost"])
def test_the_app_host_never_serves_bundle_files(bundle, build, path, host):
    response = Client().get(path.format(live=build.id), HTTP_HOST=host)
    assert response.status_code == 404
    assert b"service worker" not in response.content
    assert b"SQLite format 3" not in response.content


def test_the_app_host_keeps_its_frame_protection(client, db):
    response = client.get("/", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("visibility", "plugins", "rule", "noindex"),
    [
        ("listed", ["datasette-pretty-json"], "Allow: /", False),
        ("unlisted", [], "Disallow: /", True),
        ("listed", ["datasette-block-robots"], "Disallow: /", True),
    ],
)
def test_crawlers_get_robots_txt_from_the_server(content_client, bundle, gallery, visibility, plugins, rule, noindex):
    # Crawlers run no Service Worker, so the server itself must say what may be indexed.
    Gallery.objects.filter(pk=gallery.pk).update(visibility=visibility, plugins=plugins)
    response = content_client.get("/robots.txt")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == f"User-agent: *\n{rule}\n"
    page = content_client.get("/chinook/Album")
    assert (page.get("X-Robots-Tag") == "noindex") is noindex


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/-/static/app.css", "text/css; charset=utf-8"),
        ("/-/static/codemirror-5.57.0.min.js", "text/javascript; charset=utf-8"),
        ("/-/static-plugins/datasette-cluster-map/images/marker-icon.png", "image/png"),
        ("/-/static-plugins/datasette_vega/logo.svg", "image/svg+xml"),
        ("/-/static-plugins/some-plugin/font.woff2", "font/woff2"),
        ("/-/static-plugins/some-plugin/unknown.xyz", "application/octet-stream"),
    ],
)
def test_datasettes_static_files_are_the_live_builds_files_with_a_fixed_content_type(
    content_client, bundle, build, storage, path, content_type
):
    key = f"builds/{build.id}{path}"
    storage.put_bytes(key, b"static bytes")
    response = content_client.get(path + "?abc123")
    assert response.status_code == 200
    assert body(response) == b"static bytes"
    assert response["Content-Type"] == content_type
    # Datasette's static URLs are the same in every build: revalidate when the live build changes.
    assert response["Cache-Control"] == "no-cache"
    assert_hardened(response)


def test_a_static_file_the_bundle_lacks_is_not_found_rather_than_the_bootstrap_page(content_client, bundle, build):
    response = content_client.get("/-/static/not-in-this-bundle.js")
    assert response.status_code == 404
    assert_hardened(response)
