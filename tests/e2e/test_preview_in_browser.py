"""A pending gallery opened on its signed preview origin, in Chromium.

The preview (``gallery.content.preview.preview_url``) boots Datasette on an origin of its own while
the gallery's public origin still answers "Not published"; a forged preview link gets 403. Once
the link expires, the browser that opened it keeps nothing (the kill switch at ``/sw.js``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from gallery.content import preview as preview_module
from gallery.content.preview import preview_url
from gallery.models import Gallery

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 120_000


def test_a_pending_gallery_opens_on_its_preview_origin_and_not_on_its_public_one(
    page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="Waiting for a moderator")
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    preview = preview_url(gallery.live_build)
    assert urlsplit(preview).hostname.startswith(f"pv-{gallery.live_build_id}-")

    response = page.goto(preview + "chinook/Album")
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "private, no-store"
    page.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
    assert page.inner_text("h3").strip().startswith("347 rows")
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 1

    public = page.context.new_page()
    response = public.goto(gallery.url + "chinook/Album")
    assert response is not None and response.status == 404
    assert "Not published" in public.inner_text("h1")
    assert public.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0

    parts = urlsplit(preview)
    label, _, rest = parts.netloc.partition(".")
    forged = label[:-1] + ("a" if label[-1] != "a" else "b")
    response = public.goto(f"{parts.scheme}://{forged}.{rest}/chinook/Album")
    assert response is not None and response.status == 403
    assert "Preview link not valid" in public.inner_text("h1")
    assert public.locator("table.rows-and-columns").count() == 0


class _TwoDaysLater(datetime):
    """``datetime`` whose ``now`` is two days ahead: every preview link minted today has expired."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) + timedelta(days=2)


def test_an_expired_preview_leaves_nothing_in_the_browser_that_opened_it(
    page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="Waiting for a moderator")
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    preview = preview_url(gallery.live_build)
    page.goto(preview + "chinook/Album")
    page.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
    assert page.evaluate("caches.keys()") != []

    # The link expires (the live server runs in this process: its clock moves on).
    monkeypatch.setattr(preview_module, "datetime", _TwoDaysLater)
    # The installed worker may answer this navigation; its update check gets the kill switch
    # (an expired label's /sw.js), which wipes the caches, unregisters and reloads the page.
    page.goto(preview + "chinook/Album")
    page.wait_for_function("() => document.body.innerText.includes('Preview link not valid')", timeout=30_000)
    assert "expired" in page.inner_text("body")
    assert page.evaluate("caches.keys()") == []
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    assert page.locator("table.rows-and-columns").count() == 0
