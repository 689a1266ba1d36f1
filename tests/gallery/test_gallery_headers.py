"""Security headers of gallery origins: the build's policy, the visibility's Referrer-Policy, no HTML from uploads."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from builder.csp import gallery_policy
from builder.pyodide import PYODIDE_VERSION
from builder.storage import content_type_for
from gallery.content import files as content_files
from gallery.content.preview import preview_url
from gallery.models import Gallery

pytestmark = pytest.mark.django_db

#: Answers of the live origin that come from the build, from the server's own pages, or from nowhere.
PATHS = ["/", "/chinook/album", "/sw.js", "/robots.txt", f"/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs", "/no-such.css"]


@pytest.fixture(autouse=True)
def _forget_policies() -> None:
    """Each test's builds are new, but keep the policy memory from leaking across tests anyway."""
    content_files._BUILDS.clear()


def rewrite_manifest(storage, build, **changes) -> None:
    key = f"builds/{build.id}/manifest.json"
    manifest = json.loads(storage.open(key).read())
    manifest.update(changes)
    for name, value in changes.items():
        if value is None:
            del manifest[name]
    storage.put_bytes(key, json.dumps(manifest).encode())


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_of_a_build_carries_the_policy_its_manifest_records(content_client, bundle, build, storage, path):
    recorded = gallery_policy(("datasette-cluster-map",))
    rewrite_manifest(storage, build, content_security_policy=recorded)
    response = content_client.get(path)
    assert response["Content-Security-Policy"] == recorded
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "https://*.tile.openstreetmap.org" in response["Content-Security-Policy"]


def test_a_build_from_before_the_manifest_recorded_a_policy_gets_its_plugins_policy(
    content_client, bundle, build, storage
):
    rewrite_manifest(storage, build, content_security_policy=None, plugins=["datasette-vega"])
    assert content_client.get("/")["Content-Security-Policy"] == gallery_policy(("datasette-vega",))


def test_a_build_whose_manifest_cannot_be_read_gets_the_strict_policy_and_is_retried(
    content_client, bundle, build, storage
):
    key = f"builds/{build.id}/manifest.json"
    good = storage.open(key).read()
    storage.put_bytes(key, b"{not json")
    assert content_client.get("/")["Content-Security-Policy"] == gallery_policy(())
    storage.put_bytes(key, json.dumps({**json.loads(good), "plugins": ["datasette-vega"]}).encode())
    assert "'unsafe-eval'" in content_client.get("/")["Content-Security-Policy"], "a failure is not remembered"


def test_an_unlisted_gallery_sends_no_referrer_and_a_visibility_change_takes_effect_at_once(
    content_client, bundle, gallery
):
    assert content_client.get("/chinook")["Referrer-Policy"] == "strict-origin-when-cross-origin"
    Gallery.objects.filter(pk=gallery.pk).update(visibility=Gallery.Visibility.UNLISTED)
    for path in PATHS:
        assert content_client.get(path)["Referrer-Policy"] == "no-referrer", path
    Gallery.objects.filter(pk=gallery.pk).update(visibility=Gallery.Visibility.LISTED)
    assert content_client.get("/chinook")["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_the_database_is_served_as_opaque_bytes_never_as_a_page_or_a_script(content_client, bundle, build):
    response = content_client.get(f"/_build/{build.id}/data/chinook.db")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.sqlite3"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "name", ["chinook", "index.html", "x.html", "evil.js", "evil.mjs", "page.svg", "a.xhtml", "sw", "_"]
)
def test_a_database_key_never_gets_a_script_or_html_type_whatever_its_name(name: str) -> None:
    # The database's name in the bundle is ``data/<slug>.db``: the suffix is the builder's, never the upload's.
    for key in (f"builds/b0000000000000001/data/{name}.db", f"uploads/b0000000000000001/{name}.db"):
        kind = content_type_for(key)
        assert kind == "application/vnd.sqlite3", (key, kind)


#: The app origin's HSTS max-age in production (gallery/project/settings/core.py, SECURE_HSTS_SECONDS).
YEAR = 365 * 24 * 3600


@pytest.fixture
def hsts(settings) -> int:
    settings.SECURE_HSTS_SECONDS = YEAR
    return YEAR


@pytest.mark.parametrize("path", [*PATHS, "/_build/{build}/data/chinook.db"])
def test_answers_over_https_carry_the_apps_hsts_max_age(content_client, bundle, build, hsts, path):
    response = content_client.get(path.format(build=build.id), secure=True)
    assert response["Strict-Transport-Security"] == f"max-age={YEAR}"
    assert "Strict-Transport-Security" not in content_client.get(path.format(build=build.id))


def test_behind_nginx_the_forwarded_scheme_decides(content_client, bundle, hsts, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert content_client.get("/", HTTP_X_FORWARDED_PROTO="https")["Strict-Transport-Security"] == f"max-age={YEAR}"
    assert "Strict-Transport-Security" not in content_client.get("/", HTTP_X_FORWARDED_PROTO="http")


def test_every_kind_of_content_answer_carries_it(client, bundle, build, gallery, hsts):
    """Pinned and preview origins, refusals, the kill switch, and the bare content domain."""
    answers = {
        "pinned": client.get("/", HTTP_HOST=f"{gallery.id}--{build.id}.localhost:8000", secure=True),
        "preview": client.get("/sw.js", HTTP_HOST=urlsplit(preview_url(build)).netloc, secure=True),
        "unknown gallery": client.get("/", HTTP_HOST="abcdefabcdef.localhost:8000", secure=True),
        "bad label": client.get("/", HTTP_HOST="nosuchgallery.localhost:8000", secure=True),
        "method": client.post("/", HTTP_HOST=f"{gallery.id}.localhost:8000", secure=True),
        "bare domain": client.get("/", HTTP_HOST="localhost:8000", secure=True),
    }
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.TAKEN_DOWN)
    answers["kill switch"] = client.get("/sw.js", HTTP_HOST=f"{gallery.id}.localhost:8000", secure=True)
    assert answers["kill switch"].status_code == 200 and b"unregister" in answers["kill switch"].content
    for kind, response in answers.items():
        assert response["Strict-Transport-Security"] == f"max-age={YEAR}", kind


def test_no_hsts_when_the_app_sends_none(content_client, bundle, settings):
    settings.SECURE_HSTS_SECONDS = 0
    assert "Strict-Transport-Security" not in content_client.get("/", secure=True)
