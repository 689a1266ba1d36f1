"""Service Worker restart in Chromium: Python comes back from the memory snapshot saved in Cache Storage.

After the first boot the runtime saves a Pyodide memory snapshot (builder/runtime/reader/js/snapshot.mjs);
a Service Worker the browser stopped restores it instead of booting. The page shows how Python
started (``<html data-glasshouse-boot>``, set from the keep-alive ping's answer, keepalive.mjs),
so these tests prove a restore by that status, never by timing. A damaged snapshot is deleted
and a normal boot answers instead. Uses the session's shared Chinook build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.service_worker import stop_service_worker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 180_000
#: The cache key of this origin's saved snapshot memory (snapshot.mjs's `snapshotKeys`), or null.
SNAPSHOT_KEY = """async () => {
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) {
      if (request.url.includes("/_glasshouse_snapshot/") && request.url.endsWith("/service-worker-v1/heap")) return [name, request.url];
    }
  }
  return null;
}"""
#: Replace the snapshot's memory with bytes of the same size under the same header: it passes
#: snapshot.mjs's own checks and fails inside Pyodide's restore.
DAMAGE_SNAPSHOT = """async ([name, url]) => {
  const cache = await caches.open(name);
  const saved = await cache.match(url);
  const size = (await saved.arrayBuffer()).byteLength;
  await cache.put(url, new Response(new Uint8Array(size).fill(0xff), { headers: saved.headers }));
  return size;
}"""


def wait_for_snapshot(page: Any, seconds: float = 120) -> list[str]:
    """The ``[cache name, url]`` of the saved snapshot, once the runtime has saved it (fails after ``seconds``)."""
    for _ in range(int(seconds * 2)):
        key = page.evaluate(SNAPSHOT_KEY)
        if key:
            return key
        page.wait_for_timeout(500)
    pytest.fail(f"the runtime saved no snapshot within {seconds} s")


def booted(page: Any) -> str:
    """How the Service Worker's Python started for this page: "snapshot" or "fresh" (keepalive.mjs's status)."""
    page.wait_for_selector("html[data-glasshouse-boot]", state="attached", timeout=15_000)
    return page.get_attribute("html", "data-glasshouse-boot")


def test_a_stopped_service_worker_restores_python_from_its_snapshot_and_a_damaged_one_falls_back(
    page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite")
    base = live_gallery_server.gallery_url(gallery.pk)
    console: list[str] = []
    page.context.on("console", lambda message: console.append(message.text))
    page.goto(base + "chinook/Album")
    page.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
    # Every page the Service Worker answers loads the keep-alive module, whose ping got an answer.
    assert page.locator("script[type=module][src$='/js/keepalive.mjs']").count() == 1
    assert booted(page) == "fresh"
    key = wait_for_snapshot(page)

    # --- Stopped, the worker restores Python from the snapshot and answers correct pages.
    stop_service_worker(page)
    page.goto(base + "chinook/Track/1")
    assert "Track: 1" in page.inner_text("h1")
    assert booted(page) == "snapshot"
    assert any("restored Python and Datasette from this browser's snapshot" in line for line in console), console
    # The database is opened again after the restore (the snapshot holds no open connection).
    page.goto(base + "chinook?sql=select+count(*)+as+n+from+Track+where+GenreId+%3D+1")
    assert page.inner_text("td.col-n").strip() == "1297"
    assert page.evaluate("fetch('/chinook/Album.json?_shape=array&_size=1').then(r => r.json())")[0]["AlbumId"] == 1

    # --- A damaged snapshot is deleted; a normal boot answers the same pages, with the reason in the console.
    assert page.evaluate(DAMAGE_SNAPSHOT, key) > 30 * 1024 * 1024, "the snapshot holds the grown memory"
    stop_service_worker(page)
    page.goto(base + "chinook/Track/2")
    page.wait_for_selector("h1:has-text('Track: 2')", timeout=BOOT_MS)
    assert booted(page) == "fresh"
    assert any("deleted this gallery's saved Python snapshot, it could not be restored" in line for line in console), console
    page.goto(base + "chinook?sql=select+count(*)+as+n+from+Album")
    assert page.inner_text("td.col-n").strip() == "347"
