"""Installing a gallery as an app, in Chromium: its pages link the web app manifest, and Chromium finds nothing in the way.

Chromium's own check (CDP ``Page.getInstallabilityErrors``: the manifest's name, start URL, display
mode and icons, fetched and decoded, on a secure origin, in a profile that is not off the record)
and its parse of the manifest (``Page.getAppManifest``) on a page the Service Worker answered, as a
reader installs from. Worker mode's top-level page is the bootstrap page, which links the same
manifest. Uses the session's shared Chinook build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builder.card import BACKGROUND_COLOR, THEME_COLOR

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 180_000


def app_manifest(cdp: Any) -> dict[str, Any]:
    """``Page.getAppManifest`` of the page ``cdp`` is attached to: ``{url, errors, data, ...}``."""
    return cdp.send("Page.getAppManifest")


def test_a_gallery_page_answered_by_the_service_worker_is_installable(
    profile_page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    page = profile_page
    gallery = published_gallery(shared_data / "chinook.sqlite")
    base = live_gallery_server.gallery_url(gallery.pk)
    cdp = page.context.new_cdp_session(page)

    # The bootstrap page links the manifest from the first response on.
    page.goto(base + "chinook/Album")
    bootstrap = app_manifest(cdp)
    assert bootstrap["url"] == base + "manifest.webmanifest", bootstrap
    assert bootstrap["errors"] == []

    # Then a page the Service Worker answers (Datasette's, with its keep-alive script) links it too,
    # and Chromium's own verdict is that nothing keeps a reader from installing it (icons fetched and decoded).
    page.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
    assert page.evaluate("Boolean(navigator.serviceWorker.controller)")
    assert page.locator("script[type=module][src$='/js/keepalive.mjs']").count() == 1
    answered = app_manifest(cdp)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    assert answered["url"] == base + "manifest.webmanifest", answered
    assert answered["errors"] == [], answered["errors"]
    manifest = json.loads(answered["data"])
    assert manifest["name"] == "Shared chinook.sqlite"  # the build's title (tests/plugins/builds.py)
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/", "/", "standalone")
    assert (manifest["theme_color"], manifest["background_color"]) == (THEME_COLOR, BACKGROUND_COLOR)
    assert [icon["sizes"] for icon in manifest["icons"]] == ["192x192", "512x512"]
    assert page.evaluate("document.querySelector('meta[name=theme-color]')?.content") == THEME_COLOR

    # Worker mode: the bootstrap page stays the top-level page and links the same manifest.
    page.goto(base + "chinook/Album?_glasshouse_mode=worker")
    page.wait_for_selector("html[data-glasshouse-mode=worker]", state="attached")
    worker = app_manifest(cdp)
    assert (worker["url"], worker["errors"]) == (base + "manifest.webmanifest", [])
    cdp.detach()
