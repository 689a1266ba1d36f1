"""HTML and script in a database's table names, column names and values stay text in the gallery (Chromium).

The corpus's ``html_names`` database (``tests/corpus``), built once per session, opened in both
transports: the Service Worker, and worker mode (whose page shell writes Datasette's pages into a frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from corpus.make_corpus import HTML_COLUMN, HTML_TABLE, HTML_VALUE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 120_000


@pytest.mark.parametrize("mode", ["service-worker", "worker"])
def test_markup_in_names_and_values_is_shown_as_text_and_never_runs(
    page: Any, published_gallery: Any, live_gallery_server: Any, corpus: dict[str, Path], mode: str
) -> None:
    gallery = published_gallery(corpus["html_names"])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = live_gallery_server.gallery_url(gallery.pk, f"/{gallery.database_name}")
    if mode == "worker":
        page.goto(url + "?_glasshouse_mode=worker")
        page.wait_for_selector("html[data-glasshouse-mode=worker]")
        view = page.frame_locator("iframe.glasshouse-page")
    else:
        page.goto(url)
        view = page
    view.locator(f"a:text-is('{HTML_TABLE}')").click(timeout=BOOT_MS)  # the database page lists the table by name
    view.locator("h1", has_text=HTML_TABLE).wait_for(timeout=BOOT_MS)  # the table page, its name as text
    assert view.locator("th", has_text=HTML_COLUMN).count() >= 1
    view.locator("td", has_text=HTML_VALUE).first.wait_for()
    assert view.locator("img[src=x]").count() == 0, "the column name made no element"
    assert dialogs == [], f"a script from the database ran: {dialogs}"
