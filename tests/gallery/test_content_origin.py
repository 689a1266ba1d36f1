"""The content origin: which storage key each path of <gallery-id>.localhost maps to, and its headers."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from builder.csp import gallery_policy
from builder.pyodide import PYODIDE_VERSION
from gallery.content.pages import killswitch_source
from gallery.content.paths import IMMUTABLE
from gallery.content.preview import preview_url
from gallery.models import Build, BuildReview, BuildState, Gallery
from gallery.services import moderation

pytestmark = pytest.mark.django_db

# As written by the ``bundle`` fixture in conftest.py.
RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}"
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


#: Referrer-Policy wherever no build is served (unknown, unpublished or removed galleries).
NOT_SERVED = "no-referrer"


def assert_hardened(response, referrer: str = "strict-origin-when-cross-origin") -> None:
    """The gallery origin's headers (builder.csp): ``referrer`` is ``no-referrer`` where no build is served."""
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == referrer
    assert "X-Frame-Options" not in response
    # The fake bundles' only plugin (datasette-pretty-json) adds no sources: the base policy.
    assert response["Content-Security-Policy"] == gallery_policy(())
    assert response["Content-Security-Policy"].endswith("; frame-ancestors *"), "any site may embed a gallery"
    assert not response.cookies


def body(response) -> bytes:
    return (
        b"".join(response.streaming_content) if response.streaming else response.content
    )


def discovery_tag(href: str, title: str = "Chinook") -> bytes:
    return f'<link rel="alternate" type="application/json+oembed" href="{href}" title="{title}">'.encode()


@pytest.fixture
def app_url(settings) -> str:
    """The app origin oEmbed discovery points at, and a content origin on port 8000."""
    settings.APP_URL = "https://glasshouse.example"
    settings.CONTENT_DOMAIN = "localhost"
    settings.CONTENT_SCHEME = "http"
    settings.CONTENT_PORT = "8000"
    return settings.APP_URL


@pytest.mark.parametrize("path", DEEP_LINKS)
def test_every_app_path_gets_the_bootstrap_page_of_the_live_build(
    content_client, bundle, build, path
):
    response = content_client.get(path)
    assert response.status_code == 200
    page = bundle[f"builds/{build.id}/index.html"]
    # The build's page, with one discovery <link> inserted after <head>.
    before, _, after = page.partition(b"<head>")
    served = body(response)
    assert served.startswith(before + b"<head><link rel=\"alternate\" type=\"application/json+oembed\"")
    assert served.endswith(after)
    assert response["Content-Length"] == str(len(served))
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert "Content-Disposition" not in response
    assert_hardened(response)


def test_the_bootstrap_page_points_oembed_discovery_at_the_requested_url(
    content_client, bundle, build, gallery, app_url
):
    response = content_client.get("/chinook/album?_sort=title&_size=5")
    target = f"http%3A%2F%2F{gallery.id}.localhost%3A8000%2Fchinook%2Falbum%3F_sort%3Dtitle%26_size%3D5"
    href = f"https://glasshouse.example/oembed?url={target}&format=json"
    assert discovery_tag(href.replace("&", "&amp;")) in body(response)
    assert response["Link"] == (
        f"<{href}>; rel=\"alternate\"; type=\"application/json+oembed\"; title*=UTF-8''Chinook"
    )


def test_discovery_escapes_a_hostile_path_and_title(content_client, bundle, build, gallery, app_url, set_bundled):
    set_bundled(build, title='Tom & "Jerry" <b>\u00e9t\u00e9</b>')
    response = content_client.get('/"><script>alert(1)</script>?q=\'"><img src=x onerror=alert(2)>')
    assert response.status_code == 200
    served = body(response).decode()
    assert "<script>" not in served
    assert "<img" not in served
    assert "<b>" not in served
    tag = served[served.index("<link") : served.index(">", served.index("<link")) + 1]
    assert tag.count('"') == 8  # four attributes, no quote breaks out of one
    assert 'title="Tom &amp; &quot;Jerry&quot; &lt;b&gt;\u00e9t\u00e9&lt;/b&gt;"' in tag
    # The target URL keeps the path percent-encoded (%22%3E%3Cscript...), and oEmbed's url= encodes it again.
    assert "%2F%2522%253E%253Cscript%253Ealert%281%29%253C%2Fscript%253E" in tag
    link = response["Link"]
    assert "<script>" not in link and '"Jerry"' not in link
    assert link.endswith("title*=UTF-8''Tom%20%26%20%22Jerry%22%20%3Cb%3E%C3%A9t%C3%A9%3C%2Fb%3E")


def test_a_bootstrap_page_without_a_head_is_served_unchanged_with_the_link_header(
    content_client, bundle, build, storage
):
    page = b"<!doctype html><title>booting</title><p>no head element"
    storage.put_bytes(f"builds/{build.id}/index.html", page)
    response = content_client.get("/chinook")
    assert response.status_code == 200
    assert body(response) == page
    assert 'rel="alternate"' in response["Link"]


def test_the_bootstrap_page_of_another_url_is_not_revalidated_with_the_first_urls_etag(
    content_client, bundle, build
):
    first = content_client.get("/chinook")
    assert content_client.get("/chinook", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    other = content_client.get("/chinook/album", HTTP_IF_NONE_MATCH=first["ETag"])
    assert other.status_code == 200
    assert b"album" in body(other)


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
            f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm",
            f"{RUNTIME}/pyodide.asm.wasm",
            "application/wasm",
        ),
        (
            f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs",
            f"{RUNTIME}/pyodide.mjs",
            "text/javascript; charset=utf-8",
        ),
        (
            f"/_runtime/pyodide-{PYODIDE_VERSION}/python_stdlib.zip",
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
    response = content_client.get(f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm")
    assert response.status_code == 200
    assert response.streaming
    assert body(response) == bundle[f"{RUNTIME}/pyodide.asm.wasm"]
    assert response["Content-Length"] == str(len(bundle[f"{RUNTIME}/pyodide.asm.wasm"]))
    assert response["Content-Type"] == "application/wasm"


def test_a_head_request_gets_headers_and_no_body(content_client, bundle, build):
    response = content_client.head("/chinook/album")
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(len(body(content_client.get("/chinook/album"))))
    assert int(response["Content-Length"]) > len(bundle[f"builds/{build.id}/index.html"])


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
        f"/_runtime/pyodide-{PYODIDE_VERSION}/../../uploads/x/source.db",
        "/_runtime/%2e%2e/uploads/x/source.db",
        "/_build/{live}/../../uploads/x/source.db",
        "/_build/{live}/data/../../../uploads/x/source.db",
        f"/_wheels/{WHEEL_SHA}/../../uploads/x/source.db",
        "/_wheels/..%2f..%2fuploads/x/source.db",
        "/_runtime//etc/passwd",
        "/_runtime/",
        "/_build/{live}/",
        f"/_runtime/pyodide-{PYODIDE_VERSION}",
        f"/_runtime/pyodide-{PYODIDE_VERSION}/missing.js",
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
    assert_hardened(response, NOT_SERVED)


@pytest.mark.parametrize(
    "host",
    ["abcdefghijkl.localhost:8000", "not-a-gallery.localhost", "a.b.localhost:8000"],
)
def test_an_unknown_gallery_address_says_there_is_no_gallery(client, host):
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"No gallery at this address" in response.content
    assert_hardened(response, NOT_SERVED)


@pytest.mark.parametrize(
    "state", [Gallery.ModerationState.PENDING, Gallery.ModerationState.REJECTED]
)
@pytest.mark.parametrize("origin", ["live", "pinned"])
def test_a_gallery_not_approved_is_not_published(
    client, bundle, gallery, older_build, state, origin
):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    host = f"{gallery.id}.localhost:8000" if origin == "live" else pinned_host(gallery.id, older_build.id)
    for path in ("/", f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs"):
        response = client.get(path, HTTP_HOST=host)
        assert response.status_code == 404
        assert b"This gallery is not published (yet)" in response.content
        assert_hardened(response, NOT_SERVED)
    # A reader who cached the gallery before it was rejected keeps none of it.
    assert_killswitch(client.get("/sw.js", HTTP_HOST=host))


def assert_killswitch(worker) -> None:
    """``worker`` is the kill-switch Service Worker, served so that browsers install it."""
    assert worker.status_code == 200
    assert worker.content == killswitch_source()
    assert worker["Content-Type"] == "text/javascript; charset=utf-8"
    assert worker["Cache-Control"] == "no-cache"
    assert worker["Service-Worker-Allowed"] == "/"
    assert_hardened(worker, NOT_SERVED)


def test_a_deleted_gallery_answers_404_and_the_kill_switch(client, bundle, gallery):
    host = f"{gallery.id}.localhost:8000"
    Gallery.objects.filter(pk=gallery.pk).delete()
    response = client.get("/chinook/Album", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"SQLite format 3" not in response.content
    assert_killswitch(client.get("/sw.js", HTTP_HOST=host))


def test_a_storage_outage_is_no_removal(content_client, bundle, gallery, storage_outage):
    # 503 while storage is down: the reader's installed worker stays and serves from its cache.
    response = content_client.get("/sw.js")
    assert response.status_code == 503
    assert response.content != killswitch_source()


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
        assert_hardened(gone, NOT_SERVED)
    worker = content_client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.content == killswitch_source()
    assert worker["Content-Type"] == "text/javascript; charset=utf-8"
    assert worker["Cache-Control"] == "no-cache"
    assert_hardened(worker, NOT_SERVED)


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
        f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs",
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
def test_crawlers_get_robots_txt_from_the_server(
    content_client, bundle, build, gallery, visibility, plugins, rule, noindex, set_bundled
):
    # Crawlers run no Service Worker, so the server itself must say what may be indexed.
    Gallery.objects.filter(pk=gallery.pk).update(visibility=visibility)
    set_bundled(build, plugins=plugins)
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


# --- Pinned versions: <gallery-id>--<build-id> always serves that build --------------------


@pytest.fixture
def older_build(build: Build, make_build, make_bundle) -> Build:
    """A second ready, approved build of ``gallery`` with its own bundle files; ``build`` stays live."""
    older = make_build(review=BuildReview.APPROVED)
    make_bundle(older)
    return older


def pinned_host(gallery_id: str, build_id: str) -> str:
    return f"{gallery_id}--{build_id}.localhost:8000"


def test_a_pinned_origin_serves_its_build_while_the_gallery_origin_follows_the_live_one(
    client, content_client, bundle, build, older_build, gallery
):
    host = pinned_host(gallery.id, older_build.id)
    pinned_page = client.get("/chinook/album", HTTP_HOST=host)
    assert pinned_page.status_code == 200
    assert f"booting {older_build.id}".encode() in body(pinned_page)
    assert_hardened(pinned_page)
    worker = client.get("/sw.js", HTTP_HOST=host)
    assert body(worker) == f"// service worker of build {older_build.id}\n".encode()
    assert worker["Service-Worker-Allowed"] == "/"
    database = client.get(f"/_build/{older_build.id}/data/chinook.db", HTTP_HOST=host)
    assert body(database) == bundle["builds/" + build.id + "/data/chinook.db"].replace(
        build.id.encode(), older_build.id.encode()
    )
    assert database["Content-Type"] == "application/vnd.sqlite3"
    assert database["Cache-Control"] == IMMUTABLE
    runtime = client.get(f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs", HTTP_HOST=host)
    assert body(runtime) == bundle[f"{RUNTIME}/pyodide.mjs"]

    live_page = content_client.get("/chinook/album")
    assert f"booting {build.id}".encode() in body(live_page)
    assert body(content_client.get("/sw.js")) == bundle[f"builds/{build.id}/sw.js"]

    # Search engines index the live origin; a pinned copy asks not to be indexed.
    assert "X-Robots-Tag" not in live_page
    assert pinned_page["X-Robots-Tag"] == "noindex"
    assert body(client.get("/robots.txt", HTTP_HOST=host)) == b"User-agent: *\nDisallow: /\n"


def test_a_pinned_origin_does_not_serve_another_builds_files(
    client, bundle, build, older_build, gallery
):
    response = client.get(
        f"/_build/{build.id}/data/chinook.db", HTTP_HOST=pinned_host(gallery.id, older_build.id)
    )
    assert response.status_code == 404
    assert b"No file at this address" in response.content
    assert_hardened(response)


def test_a_pinned_origin_serves_its_own_builds_static_files(client, content_client, bundle, build, older_build, gallery, storage):
    for served in (build, older_build):
        storage.put_bytes(f"builds/{served.id}/-/static/app.css", f"css of {served.id}".encode())
    pinned = client.get("/-/static/app.css", HTTP_HOST=pinned_host(gallery.id, older_build.id))
    assert body(pinned) == f"css of {older_build.id}".encode()
    assert body(content_client.get("/-/static/app.css")) == f"css of {build.id}".encode()


def test_the_discovery_link_on_a_pinned_origin_names_the_pinned_url(
    client, bundle, older_build, gallery, app_url
):
    response = client.get("/chinook", HTTP_HOST=pinned_host(gallery.id, older_build.id))
    target = f"http%3A%2F%2F{gallery.id}--{older_build.id}.localhost%3A8000%2Fchinook"
    assert discovery_tag(f"https://glasshouse.example/oembed?url={target}&amp;format=json") in body(response)


@pytest.mark.parametrize(
    "case",
    [
        "another galleries build",
        "unknown build",
        BuildState.FAILED,
        BuildState.QUEUED,
        BuildState.CANCELLED,
        BuildReview.PENDING,
        BuildReview.REJECTED,
    ],
)
def test_a_pinned_origin_without_an_approved_ready_build_of_the_gallery_is_not_found(
    client, bundle, build, gallery, other_gallery, make_build, make_bundle, case
):
    if case == "another galleries build":
        build_id = make_build(of=other_gallery, review=BuildReview.APPROVED).id
    elif case == "unknown build":
        build_id = "0123456789abcdef"
    elif case in BuildReview.values:
        # Ready with every file stored, but nobody approved it (a new version waiting for review,
        # an upload a moderator never saw) or it was rejected: as unknown as a build never made.
        unapproved = make_build(review=case)
        make_bundle(unapproved)
        build_id = unapproved.id
    else:
        build_id = make_build(case, review=BuildReview.APPROVED).id
    for path in ("/", f"/_build/{build_id}/data/chinook.db", f"/_build/{build.id}/data/chinook.db"):
        response = client.get(path, HTTP_HOST=pinned_host(gallery.id, build_id))
        assert response.status_code == 404
        assert b"This gallery has no published version at this address" in response.content
        assert_hardened(response, NOT_SERVED)
    assert_killswitch(client.get("/sw.js", HTTP_HOST=pinned_host(gallery.id, build_id)))


@pytest.mark.parametrize("origin", ["live", "pinned live build", "pinned older build"])
def test_a_takedown_answers_410_and_the_kill_switch_on_the_live_and_every_pinned_origin(
    client, bundle, build, older_build, gallery, origin
):
    host = {
        "live": f"{gallery.id}.localhost:8000",
        "pinned live build": pinned_host(gallery.id, build.id),
        "pinned older build": pinned_host(gallery.id, older_build.id),
    }[origin]
    assert client.get("/", HTTP_HOST=host).status_code == 200
    moderation.take_down(gallery, "copyright notice")
    for path in ("/", "/chinook/album", f"/_build/{older_build.id}/data/chinook.db", f"/_download/{build.id}.zip"):
        gone = client.get(path, HTTP_HOST=host)
        assert gone.status_code == 410
        assert b"This gallery was taken down" in gone.content
        assert_hardened(gone, NOT_SERVED)
    assert_killswitch(client.get("/sw.js", HTTP_HOST=host))


# --- /_report: the footer's "Report" link leads to the app's report form ---------------------


@pytest.mark.parametrize("origin", ["live", "pinned"])
def test_the_report_link_redirects_to_the_apps_report_form_naming_the_page(
    client, bundle, build, older_build, gallery, app_url, origin
):
    label = gallery.id if origin == "live" else f"{gallery.id}--{older_build.id}"
    response = client.get("/_report?url=%2Fchinook%2Falbum%3F_sort%3Dtitle", HTTP_HOST=f"{label}.localhost:8000")
    page = f"http%3A%2F%2F{label}.localhost%3A8000%2Fchinook%2Falbum%3F_sort%3Dtitle"
    assert response.status_code == 302
    assert response["Location"] == f"https://glasshouse.example/g/{gallery.id}/report/?url={page}"
    assert response["Cache-Control"] == "no-cache"
    assert_hardened(response)


@pytest.mark.parametrize("query", ["", "?url=", "?url=https%3A%2F%2Fevil.example%2F", "?url=chinook"])
def test_a_report_link_without_a_page_path_leads_to_the_form_for_the_gallery(
    content_client, bundle, gallery, app_url, query
):
    response = content_client.get(f"/_report{query}")
    assert response.status_code == 302
    assert response["Location"] == f"https://glasshouse.example/g/{gallery.id}/report/"


def test_a_gallery_that_is_not_published_has_no_report_link(content_client, bundle, gallery):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    response = content_client.get("/_report?url=%2F")
    assert response.status_code == 404
    assert b"This gallery is not published (yet)" in response.content


def test_a_preview_has_no_report_form_and_its_signed_address_is_never_passed_on(client, bundle, build):
    host = urlsplit(preview_url(build)).netloc
    response = client.get("/_report?url=%2Fchinook", HTTP_HOST=host)
    assert response.status_code == 404
    assert b"only published galleries can be reported" in response.content
    assert "Location" not in response


@pytest.mark.parametrize(
    ("content_domain", "host"),
    [("localhost", "localhost:8000"), ("localhost", "LOCALHOST"), ("example-content.org", "example-content.org")],
)
@pytest.mark.parametrize("path", ["/", "/publish/", "/accounts/login/", "/admin/", "/healthz", "/sw.js"])
def test_the_bare_content_domain_is_no_gallery_and_never_the_app(client, settings, content_domain, host, path):
    settings.CONTENT_DOMAIN = content_domain
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, f".{content_domain}"]
    settings.APP_URL = "https://glasshouse.example.org"
    response = client.get(path, HTTP_HOST=host)
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is no gallery at this address" in page
    assert '<a href="https://glasshouse.example.org">https://glasshouse.example.org</a>' in page
    assert response["Cache-Control"] == "no-cache"
    assert_hardened(response, NOT_SERVED)


def test_the_bare_content_domain_refuses_forms_too(client):
    response = client.post("/publish/", {"title": "x"}, HTTP_HOST="localhost:8000")
    assert response.status_code == 404 and b"There is no gallery at this address" in response.content
    assert not response.cookies
