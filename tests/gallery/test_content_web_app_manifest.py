"""The web app manifest on gallery origins: ``/manifest.webmanifest`` is the served build's, with its icons,
on the live, pinned and preview origins, and nowhere a build is not published."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from gallery.content.paths import IMMUTABLE
from gallery.content.preview import preview_url
from gallery.models import Build, BuildReview, Gallery

pytestmark = pytest.mark.django_db


def store_web_app_files(storage, build: Build) -> dict[str, bytes]:
    """Store what a build writes for its web app manifest (``builder.bundle.write_web_app_manifest``), naming the build."""
    files = {
        f"builds/{build.id}/manifest.webmanifest": (
            f'{{"name": "Chinook {build.id}", "start_url": "/", "icons": '
            f'[{{"src": "/_build/{build.id}/icon-192.png", "sizes": "192x192"}}]}}\n'
        ).encode(),
        f"builds/{build.id}/icon-192.png": b"\x89PNG\r\n\x1a\n" + build.id.encode(),
        f"builds/{build.id}/icon-512.png": b"\x89PNG\r\n\x1a\n512" + build.id.encode(),
    }
    for key, data in files.items():
        storage.put_bytes(key, data)
    return files


@pytest.fixture
def web_app(storage, bundle, build) -> dict[str, bytes]:
    return store_web_app_files(storage, build)


@pytest.fixture
def older_build(build: Build, make_build, make_bundle, storage) -> Build:
    """A second ready, approved build of the gallery with its own files and web app manifest; ``build`` stays live."""
    older = make_build(review=BuildReview.APPROVED)
    make_bundle(older)
    store_web_app_files(storage, older)
    return older


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_live_origin_serves_the_live_builds_web_app_manifest_and_icons(content_client, web_app, build) -> None:
    response = content_client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert body(response) == web_app[f"builds/{build.id}/manifest.webmanifest"]
    assert response["Content-Type"] == "application/manifest+json"
    # A fixed URL whose build changes when a new version goes live: revalidated, like /sw.js.
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    for size in (192, 512):
        icon = content_client.get(f"/_build/{build.id}/icon-{size}.png")
        assert icon.status_code == 200
        assert body(icon) == web_app[f"builds/{build.id}/icon-{size}.png"]
        assert (icon["Content-Type"], icon["Cache-Control"]) == ("image/png", IMMUTABLE)


def test_a_pinned_origin_serves_its_own_builds_web_app_manifest(client, web_app, build, older_build, gallery) -> None:
    host = f"{gallery.id}--{older_build.id}.localhost:8000"
    response = client.get("/manifest.webmanifest", HTTP_HOST=host)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    assert json.loads(body(response))["name"] == f"Chinook {older_build.id}"
    assert client.get(f"/_build/{older_build.id}/icon-192.png", HTTP_HOST=host).status_code == 200


def test_a_preview_origin_serves_its_builds_web_app_manifest_privately(client, web_app, build, gallery) -> None:
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING, live_build=None)
    Build.objects.filter(pk=build.pk).update(review=BuildReview.PENDING, approval="")
    build.refresh_from_db()
    host = urlsplit(preview_url(build)).netloc
    response = client.get("/manifest.webmanifest", HTTP_HOST=host)
    assert response.status_code == 200
    assert body(response) == web_app[f"builds/{build.id}/manifest.webmanifest"]
    assert response["Content-Type"] == "application/manifest+json"
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Robots-Tag"] == "noindex"
    # ...while the gallery's public origin publishes nothing.
    assert client.get("/manifest.webmanifest", HTTP_HOST=f"{gallery.id}.localhost:8000").status_code == 404


@pytest.mark.parametrize(
    "state", [Gallery.ModerationState.PENDING, Gallery.ModerationState.REJECTED, Gallery.ModerationState.TAKEN_DOWN]
)
def test_a_gallery_that_is_not_published_serves_no_web_app_manifest(client, web_app, gallery, older_build, state) -> None:
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    for host in (f"{gallery.id}.localhost:8000", f"{gallery.id}--{older_build.id}.localhost:8000"):
        response = client.get("/manifest.webmanifest", HTTP_HOST=host)
        assert response.status_code == (410 if state == Gallery.ModerationState.TAKEN_DOWN else 404)
        assert b'"start_url"' not in body(response)


def test_an_unapproved_build_on_a_pinned_origin_serves_no_web_app_manifest(
    client, web_app, gallery, make_build, make_bundle, storage
) -> None:
    waiting = make_build(review=BuildReview.PENDING)
    make_bundle(waiting)
    store_web_app_files(storage, waiting)
    response = client.get("/manifest.webmanifest", HTTP_HOST=f"{gallery.id}--{waiting.id}.localhost:8000")
    assert response.status_code == 404
    assert b'"start_url"' not in body(response)


def test_a_build_from_before_web_app_manifests_answers_404_not_its_bootstrap_page(content_client, bundle, build) -> None:
    response = content_client.get("/manifest.webmanifest")
    assert response.status_code == 404
    assert b"No file at this address" in body(response)
    assert response["Content-Type"] == "text/html; charset=utf-8"
