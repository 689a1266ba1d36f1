"""The app origin's headers and cookies: a nonce CSP, Permissions-Policy, COOP, HSTS, host-only cookies.

Gallery origins are answered before the app's middleware (``gallery.content``) and get none of
these; their own headers are tested in ``test_content_origin.py``. Production's (HSTS, secure
cookies, ``check --deploy``) are in ``test_gallery_settings.py``.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from gallery.models import Build, BuildState
from tests.plugins.users import PASSWORD

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as ``{directive: [source, ...]}``."""
    directives = [part.split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def app_pages(client, gallery, build) -> dict[str, str]:
    """``{path: html}`` of the app's pages with scripts and styles, as an anonymous reader sees them."""
    paths = [
        "/",
        "/publish/",
        "/plugins/",
        f"/g/{gallery.id}/",
        f"/g/{gallery.id}/report/",
        build.get_absolute_url(),
        reverse("account_login"),
        reverse("account_signup"),
        "/admin/login/",
    ]
    pages = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        pages[path] = response.content.decode()
    return pages


@pytest.fixture
def live_gallery(gallery, build, bundle):
    """``gallery`` with ``build`` live and its fake bundle stored, as the app lists it."""
    return gallery


def test_the_app_sends_a_strict_nonce_policy(client, settings):
    response = client.get("/publish/")
    nonce = re.search(r'<script src="[^"]+" nonce="([^"]+)"', response.content.decode())[1]
    csp = policy(response)
    assert csp["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert csp["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]
    # The embed panel's preview and the share cards come from gallery origins (settings at import).
    assert csp["frame-src"] == [f"http://*.localhost:{settings.CONTENT_PORT}"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    # A new nonce per response.
    assert client.get("/publish/")["Content-Security-Policy"] != response["Content-Security-Policy"]


def test_the_frame_and_image_sources_are_exactly_the_gallery_origins():
    from gallery.project.settings.web import app_csp, content_origins_source

    production = app_csp(content_origins_source("https", "glasshouse-content.org", ""))
    assert production["frame-src"] == ["https://*.glasshouse-content.org"]
    assert production["img-src"] == ["'self'", "data:", "https://*.glasshouse-content.org"]
    development = app_csp(content_origins_source("http", "localhost", "8000"))
    assert development["frame-src"] == ["http://*.localhost:8000"]


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|<[a-z][^>]*\sstyle=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)


def test_no_app_page_has_an_inline_script_style_or_handler_the_policy_would_block(client, live_gallery, build):
    for path, html in app_pages(client, live_gallery, build).items():
        assert not INLINE_SCRIPT.findall(html), path
        assert not INLINE_STYLE.findall(html), path
        assert not EVENT_HANDLER.findall(html), path


def test_the_app_denies_powerful_features_and_keeps_its_window_to_itself(client):
    response = client.get("/")
    features = dict(item.split("=", 1) for item in response["Permissions-Policy"].split(", "))
    for name in ("camera", "microphone", "geolocation", "usb", "payment"):
        assert features[name] == "()", name
    assert "clipboard-write" not in features  # the embed panel's Copy buttons
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response  # development: plain http


def test_gallery_origins_get_none_of_the_apps_headers(content_client, bundle):
    response = content_client.get("/")
    assert response.status_code == 200
    assert "Permissions-Policy" not in response
    assert "'nonce-" not in response.get("Content-Security-Policy", "")


def test_app_cookies_are_host_only_lax_and_the_session_is_out_of_scripts_reach(client, publisher):
    client.get(reverse("account_login"))
    response = client.post(reverse("account_login"), {"login": publisher.email, "password": PASSWORD})
    assert response.status_code == 302
    session, csrf = response.cookies["sessionid"], client.cookies["csrftoken"]
    for cookie in (session, csrf):
        assert cookie["domain"] == "", "host-only: no Domain attribute"
        assert cookie["samesite"] == "Lax"
        assert cookie["path"] == "/"
    assert session["httponly"] is True
    assert not session["secure"]  # development runs on plain http


def test_a_build_page_still_polls_from_its_static_script(client, gallery):
    build = Build.objects.create(id="b" * 16, gallery=gallery, state=BuildState.BUNDLING, source_bytes=1)
    html = client.get(build.get_absolute_url()).content.decode()
    assert f'data-status-url="{reverse("gallery:build-status", args=[build.id])}"' in html
    assert re.search(r'<script src="/static/gallery/build\.js" nonce="[^"]+" defer>', html)
