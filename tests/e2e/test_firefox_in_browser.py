"""A gallery in Firefox ESR (Gecko), driven over WebDriver BiDi: what a Firefox reader gets.

The gallery is built to be read lazily (``test_lazy_database_in_browser.py``'s build, shared).
Where the browser has JSPI (``WebAssembly.Suspending``) it reads the database in blocks, else it
downloads the whole file, checked; either way it works as any other: with a Service Worker, and
in worker mode where Service Workers are turned off (Firefox's ``dom.serviceWorkers.enabled``,
as in some private or locked-down profiles). Each Firefox starts with empty storage, so each mode
pays one cold boot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.firefox import Firefox

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Seconds a cold boot may take.
BOOT_S = 120
SQL_URL = "chinook?sql=select+count(*)+as+n+from+Track+where+GenreId+%3D+1"
#: How the runtime read the database, as the page's ``<html data-glasshouse-database>`` says.
DATABASE_MODE = "document.documentElement.dataset.glasshouseDatabase || ''"
#: Whether this browser has JSPI, which reading in blocks needs.
HAS_JSPI = "typeof WebAssembly.Suspending === 'function' && typeof WebAssembly.promising === 'function'"


def test_a_lazily_built_gallery_runs_in_firefox_with_and_without_service_workers(
    firefox: Callable[..., Firefox], published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", lazy_database_min_bytes=0)
    base = live_gallery_server.gallery_url(gallery.pk)
    hosts = [f"{gallery.pk}.localhost"]

    # Service Worker mode: the cold visit, a table, a query, a page script's fetch, a deep link.
    reader = firefox(hosts)
    reader.goto(base + "chinook/Album")
    assert reader.text_of("h3", "347 rows", timeout=BOOT_S)
    assert reader.evaluate("Boolean(navigator.serviceWorker && navigator.serviceWorker.controller)")
    expected = "lazy" if reader.evaluate(HAS_JSPI) else "whole"
    assert reader.evaluate(DATABASE_MODE) == expected
    reader.goto(base + SQL_URL)
    assert reader.text_of("td.col-n", "1297")
    rows = reader.evaluate("fetch('/chinook/Album.json?_shape=array&_size=2').then(r => r.json())")
    assert rows[0] == {"AlbumId": 1, "Title": "For Those About To Rock We Salute You", "ArtistId": 1}
    reader.goto(base + "chinook/Track/1")
    assert "Track: 1" in reader.text_of("h1", "Track")

    # No Service Workers at all: the gallery runs in worker mode, from a deep link.
    locked_down = firefox(hosts, {"dom.serviceWorkers.enabled": False})
    locked_down.goto(base + "chinook/Album")
    locked_down.until("document.documentElement.dataset.glasshouseMode === 'worker'")
    assert locked_down.text_of("h3", "347 rows", timeout=BOOT_S)
    assert locked_down.evaluate(DATABASE_MODE) == expected
    locked_down.goto(base + SQL_URL)
    assert locked_down.text_of("td.col-n", "1297")
    assert locked_down.url == base + SQL_URL
