"""``CONTENT_ACCEL_REDIRECT``: Django decides, nginx sends the store's bytes (deploy/nginx/content.conf).

With the setting on, a GET of a store file is answered with ``X-Accel-Redirect: <prefix><key>``,
no body and every header the answer would have had, and storage is never read; the few answers
Django writes itself (bootstrap page, robots.txt, refusals, the kill switch) are unchanged. Off
(the default), the bytes are streamed as before. The nginx side is tested in
tests/deploy/test_production_shape.py.
"""

from __future__ import annotations

import pytest

from builder.pyodide import PYODIDE_VERSION
from gallery.content.files import build_policy
from gallery.content.pages import killswitch_source
from gallery.content.paths import IMMUTABLE
from gallery.models import Gallery

pytestmark = pytest.mark.django_db

RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}"
WHEEL_SHA = "ab" * 32


@pytest.fixture
def accel(settings) -> str:
    settings.CONTENT_ACCEL_REDIRECT = "/_s3/"
    return settings.CONTENT_ACCEL_REDIRECT


@pytest.fixture
def no_reads(storage_outage) -> None:
    """Every storage call fails: an answer that needs none shows Django did not touch the store."""


def _store_paths(build_id: str) -> list[tuple[str, str, str, str]]:
    """(path, key, content type, Cache-Control) of each kind of store file."""
    return [
        (f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm", f"{RUNTIME}/pyodide.asm.wasm", "application/wasm", IMMUTABLE),
        (f"/_wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl",
         f"wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl", "application/zip", IMMUTABLE),
        (f"/_build/{build_id}/data/chinook.db", f"builds/{build_id}/data/chinook.db", "application/vnd.sqlite3",
         IMMUTABLE),
        ("/-/static/app.css", f"builds/{build_id}/-/static/app.css", "text/css; charset=utf-8", "no-cache"),
        ("/sw.js", f"builds/{build_id}/sw.js", "text/javascript; charset=utf-8", "no-cache"),
    ]  # fmt: skip


def test_store_files_are_redirected_to_nginx_with_the_map_s_headers_and_no_body(
    content_client, bundle, build, accel, request
):
    # A process reads a build's policy from its manifest once (gallery.content.files.build_policy);
    # after that, redirecting a store file touches the store no more.
    policy = build_policy(build.id)
    assert "frame-ancestors *" in policy
    request.getfixturevalue("no_reads")
    for path, key, content_type, cache_control in _store_paths(build.id):
        response = content_client.get(path)
        assert response.status_code == 200, path
        assert response["X-Accel-Redirect"] == f"/_s3/{key}"
        assert response.content == b""
        assert response["Content-Type"] == content_type
        assert response["Cache-Control"] == cache_control
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == policy
        assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert not response.cookies
    assert content_client.get("/sw.js")["Service-Worker-Allowed"] == "/"
    assert content_client.get("/sw.js")["Clear-Site-Data"] == '"cookies"'


def test_the_self_host_zip_is_redirected_to_nginx_as_an_attachment(content_client, bundle, build, accel, request):
    build_policy(build.id)  # the manifest, read once per build and process (file name and policy)
    request.getfixturevalue("no_reads")
    response = content_client.get(f"/_download/{build.id}.zip")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_s3/builds/{build.id}/download.zip"
    assert response.content == b""
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response.cookies


def test_the_redirect_percent_encodes_the_key(content_client, bundle, build, accel):
    response = content_client.get(f"/_build/{build.id}/data/a%20b%2Bc%3F.db")
    assert response["X-Accel-Redirect"] == f"/_s3/builds/{build.id}/data/a%20b%2Bc%3F.db"


def test_django_still_decides_what_is_served(content_client, bundle, build, gallery, accel):
    """Refusals, the other build's files and the kill switch are Django's own answers, never redirected."""
    other = content_client.get("/_build/zzzzzzzzzzzzzzzz/data/chinook.db")
    assert other.status_code == 404 and "X-Accel-Redirect" not in other
    bad_wheel = content_client.get("/_wheels/not-a-sha/x.whl")
    assert bad_wheel.status_code == 404 and "X-Accel-Redirect" not in bad_wheel
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.TAKEN_DOWN)
    gone = content_client.get(f"/_build/{build.id}/data/chinook.db")
    assert gone.status_code == 410 and "X-Accel-Redirect" not in gone
    killswitch = content_client.get("/sw.js")
    assert killswitch.status_code == 200 and "X-Accel-Redirect" not in killswitch
    assert b"".join(killswitch.streaming_content if killswitch.streaming else [killswitch.content]) == (
        killswitch_source()
    )


def test_a_conditional_get_is_still_answered_304_by_django(content_client, bundle, build, accel):
    first = content_client.get(f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs")
    again = content_client.get(f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and "X-Accel-Redirect" not in again


def test_head_is_answered_by_django_with_the_size(content_client, bundle, build, accel):
    response = content_client.head(f"/_build/{build.id}/data/chinook.db")
    assert response.status_code == 200
    assert "X-Accel-Redirect" not in response
    assert response["Content-Length"] == str(len(bundle[f"builds/{build.id}/data/chinook.db"]))


def test_the_bootstrap_page_is_written_by_django(content_client, bundle, build, accel):
    response = content_client.get("/chinook")
    assert response.status_code == 200 and "X-Accel-Redirect" not in response
    assert b'<link rel="alternate"' in response.content


def test_off_by_default_the_bytes_are_streamed_by_django(content_client, bundle, build, settings):
    assert settings.CONTENT_ACCEL_REDIRECT == ""
    response = content_client.get(f"/_build/{build.id}/data/chinook.db")
    assert "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == bundle[f"builds/{build.id}/data/chinook.db"]
