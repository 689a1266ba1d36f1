"""Lazy databases in Chromium: a database at or above the build's threshold is read in blocks as pages need them.

The build publishes a sha256 per 64 KiB block (builder/lazy_database.py); the reader's Service Worker
opens the database through a SQLite VFS whose reads fetch those blocks with range requests, checks
each, and keeps it in Cache Storage (builder/runtime/reader/js/lazy-database.mjs). Chinook (1 MB,
15 blocks as built) is built with a threshold of 0 so that it is read lazily; what the worker fetched
comes from its own status (core.mjs ``status()``, the keep-alive ping's answer). WebKit, which lacks
JSPI, reads the same build whole (test_webkit_in_browser.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 180_000
#: The controlling Service Worker's status (core.mjs ``status()``), asked with a keep-alive ping.
WORKER_STATUS = """() => new Promise((resolve) => {
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data && event.data.type === "glasshouse:keepalive") resolve(event.data);
  });
  navigator.serviceWorker.controller.postMessage({ type: "glasshouse:keepalive" });
})"""


def blocks_of_tables(database: Path, block_bytes: int = 64 * 1024) -> set[int]:
    """The blocks of ``database`` that hold pages of its tables (SQLite's ``dbstat``), indexes left out."""
    with sqlite3.connect(database) as conn:
        page_size = conn.execute("pragma page_size").fetchone()[0]
        tables = {name for (name,) in conn.execute("select name from sqlite_master where type = 'table'")}
        pages = [page for name, page in conn.execute("select name, pageno from dbstat") if name in tables]
    return {(page - 1) * page_size // block_bytes for page in pages}


#: A query that counts the rows of every Chinook table in its own b-tree (``not indexed``): it
#: reads every page of every table, so it needs every block that holds one.
EVERY_TABLE = " + ".join(
    f"(select count(*) from {table} not indexed)"
    for table in ("Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "InvoiceLine", "MediaType", "Playlist",
                  "PlaylistTrack", "Track")
)  # fmt: skip


def test_a_lazy_database_is_read_in_checked_blocks_and_an_unread_part_offline_says_what_to_do(
    page: Any, published_gallery: Any, stoppable_gallery_server: Any, shared_data: Path, shared_store: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", lazy_database_min_bytes=0)
    base = stoppable_gallery_server.gallery_url(gallery.pk)
    built = shared_store / "builds" / gallery.live_build_id / "data" / "chinook.db"  # the build's canonical copy
    size = built.stat().st_size

    page.goto(base + "chinook/Album?_sort=AlbumId")
    page.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
    assert "For Those About To Rock We Salute You" in page.inner_text("table.rows-and-columns")
    status = page.evaluate(WORKER_STATUS)
    assert status["database"] == "lazy", status
    assert status["snapshot"] == "off", status  # a lazy database's worker makes no snapshot
    read = status["blocks"]
    # The first page read a part of the file, in whole blocks, each fetched once; fewer blocks than
    # hold the tables' rows, so a query over every row needs some that were not fetched.
    assert 0 < read["bytes"] < size, read
    assert read["bytes"] == read["requests"] * 64 * 1024, read
    assert read["requests"] < len(blocks_of_tables(built)), read

    # Offline, what was read still answers; a page that needs unread blocks says what to do.
    stoppable_gallery_server.stop()
    page.goto(base + "chinook/Album?_sort=AlbumId")
    assert "For Those About To Rock We Salute You" in page.inner_text("table.rows-and-columns")
    response = page.goto(base + "chinook?" + urlencode({"sql": f"select {EVERY_TABLE} as n"}))
    assert response is not None and response.status == 503
    assert "Part of this gallery's data could not be loaded" in page.inner_text("h1")
    assert "Check your connection and reload the page" in page.inner_text("body")

    # Back online, the same query reads the missing blocks and answers as the whole file would.
    stoppable_gallery_server.start()
    page.goto(base + "chinook?" + urlencode({"sql": f"select {EVERY_TABLE} as n"}))
    with sqlite3.connect(built) as conn:
        expected = conn.execute(f"select {EVERY_TABLE}").fetchone()[0]
    assert page.inner_text("td.col-n").strip() == str(expected)
    after = page.evaluate(WORKER_STATUS)["blocks"]
    assert read["requests"] < after["requests"] <= -(-size // (64 * 1024)), after  # never more than the file's blocks

    # Worker mode (no Service Worker) reads lazily too, from the blocks this origin's cache holds.
    page.goto(base + "chinook?sql=select+count(*)+as+n+from+Track+where+GenreId+%3D+1&_glasshouse_mode=worker")
    page.wait_for_selector("html[data-glasshouse-database]", state="attached", timeout=BOOT_MS)
    assert page.get_attribute("html", "data-glasshouse-mode") == "worker"
    assert page.get_attribute("html", "data-glasshouse-database") == "lazy"
    assert page.frame_locator("iframe.glasshouse-page").last.locator("td.col-n").inner_text().strip() == "1297"
