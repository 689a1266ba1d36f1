"""A removal reaches readers who had the gallery open and cached, in Chromium.

After a gallery is rejected, taken down or deleted, its origin answers ``/sw.js`` with the kill-switch
worker (``gallery.content``): the browser's next update check installs it, it empties the
gallery's caches, unregisters itself and reloads the page, which then gets the server's notice.
Each removal also deletes the bundle's files from storage (``removal.remove_build_files``);
the shared prebuilt bundle is put back for later tests by ``prebuilt_bundle``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from gallery.models import Gallery
from gallery.services import moderation

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 120_000


def reject(gallery: Gallery) -> None:
    moderation.reject(gallery, "The licence field is missing; add it and upload again.")


def take_down(gallery: Gallery) -> None:
    moderation.take_down(gallery, "Reported for publishing personal data; upheld.")


def delete(gallery: Gallery) -> None:
    moderation.delete_gallery(gallery)


@pytest.mark.parametrize(
    ("remove", "notice"),
    [
        (reject, "This gallery is not published (yet)."),
        (take_down, "This gallery was taken down."),
        (delete, "This gallery was deleted by its publisher."),
    ],
    ids=["rejected-after-approval", "taken-down", "deleted"],
)
def test_a_removed_gallery_leaves_nothing_in_the_readers_browser(
    remove: Any, notice: str, page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite")
    page.goto(gallery.url + "chinook/Album")
    page.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
    assert page.evaluate("caches.keys()") != []
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 1

    remove(gallery)
    # The installed worker may answer this navigation; its update check fetches the kill switch,
    # which wipes the caches, unregisters itself and reloads the page from the server.
    page.goto(gallery.url + "chinook/Album")
    page.wait_for_function(f"() => document.body.innerText.includes({notice!r})", timeout=30_000)
    assert page.evaluate("caches.keys()") == []
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    assert page.locator("table.rows-and-columns").count() == 0
    assert not (Path(settings.LOCAL_STORAGE_ROOT) / "builds" / gallery.builds.get().pk).exists()
