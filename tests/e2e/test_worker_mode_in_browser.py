"""Worker mode in Chromium: with no Service Worker, the page shell runs Datasette in a dedicated Worker.

Forced at top level with ``?_glasshouse_mode=worker`` (the same code path a browser without
Service Workers takes), on bundles built once per session by ``published_gallery``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from builder.catalog import DATASETTE_VERSIONS, DEFAULT_DATASETTE_VERSION
from tests.support.plugin_data import group_metadata, group_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: A cold boot in Chromium here takes 7-20 s; the first page waits longer.
BOOT_MS = 120_000
APP_FRAME = "iframe.glasshouse-page"


def open_in_worker_mode(page: Any, url: str) -> Any:
    """Open ``url`` forced into worker mode; return the frame locator of the shell's page frame."""
    page.goto(url + ("&" if "?" in url else "?") + "_glasshouse_mode=worker")
    page.wait_for_selector("html[data-glasshouse-mode=worker]")
    assert "Running without a Service Worker" in page.inner_text("#mode")
    frame = page.frame_locator(APP_FRAME)
    frame.locator("body").wait_for(timeout=BOOT_MS)
    # The loading page showed the Worker's download progress before the first page replaced it.
    assert re.search(r"[0-9.]+ MB of [0-9.]+ MB downloaded", page.text_content("#detail")), page.text_content("#detail")
    return frame


def open_table_in_worker_mode(page: Any, base: str, database: str, link_text: str, table_path: str) -> tuple[Any, str]:
    """Open ``database``'s page in worker mode, click the table link; return the frame and the row count line."""
    frame = open_in_worker_mode(page, base + database)
    frame.locator(f"a:text-is('{link_text}')").click(timeout=BOOT_MS)
    page.wait_for_url(base + table_path)
    return frame, frame.locator("h3").first.inner_text().strip()


def click_link(frame: Any, href: str) -> None:
    """Add a link to ``href`` to the page in ``frame`` and click it, as a reader would."""
    frame.locator("body").evaluate(
        "(body, href) => { const a = document.createElement('a'); a.href = href; a.textContent = href;"
        " body.append(a); a.click(); }",
        href,
    )


def test_worker_mode_runs_the_chinook_gallery_like_service_worker_mode(
    page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite")
    base = live_gallery_server.gallery_url(gallery.pk)
    frame, count = open_table_in_worker_mode(page, base, "chinook", "Album", "chinook/Album")
    assert count.startswith("347 rows")
    assert page.evaluate("navigator.serviceWorker.controller") is None
    assert page.title().startswith("chinook: Album"), "the shell shows the page's title"

    # Page scripts run in the frame (loaded from the bundle's static files): the column cog menu opens.
    frame.locator("th .dropdown-menu-icon").first.click()
    assert frame.locator(".dropdown-menu").first.is_visible()
    assert "Sort" in frame.locator(".dropdown-menu").first.inner_text()

    # A SQL query through the form (a GET submission the shell answers through the Worker).
    page.goto(base + "chinook")  # reload on a copied link: worker mode again (the session asked for it)
    frame = page.frame_locator(APP_FRAME)
    editor = frame.locator(".CodeMirror")  # Datasette's SQL editor script ran
    editor.wait_for(timeout=BOOT_MS)
    editor.evaluate("(el, sql) => el.CodeMirror.setValue(sql)", "select count(*) as n from Track where GenreId = 1")
    frame.locator("form.sql input[type=submit]").first.click()
    assert frame.locator("td.col-n").inner_text().strip() == "1297"
    assert "sql=select" in page.url

    # Back and forward follow the shell's history.
    page.go_back()
    # The query page has an editor too: wait for its results to go, not for an editor.
    frame.locator("td.col-n").wait_for(state="detached", timeout=BOOT_MS)
    frame.locator(".CodeMirror").wait_for()
    assert page.url == base + "chinook"
    page.go_forward()
    assert frame.locator("td.col-n").inner_text().strip() == "1297"

    # The frame's fetch reaches the Worker: JSON and CSV exports.
    rows = frame.locator("body").evaluate("() => fetch('/chinook/Album.json?_shape=array&_size=2').then(r => r.json())")
    assert rows[0] == {"AlbumId": 1, "Title": "For Those About To Rock We Salute You", "ArtistId": 1}
    xhr = frame.locator("body").evaluate(
        """() => new Promise((resolve) => { const x = new XMLHttpRequest(); x.open('GET', '/chinook/Album.csv?_size=2');
             x.onload = () => resolve([x.status, x.responseText]); x.send(); })"""
    )
    assert xhr[0] == 200 and xhr[1].splitlines()[0] == "AlbumId,Title,ArtistId"

    # A CSV link with ?_dl=1 downloads a file; a .json link shows the JSON.
    with page.expect_download() as download:
        click_link(frame, "/chinook/Album.csv?_dl=1&_size=2")
    assert download.value.suggested_filename == "Album.csv"
    assert Path(download.value.path()).read_text().splitlines()[0] == "AlbumId,Title,ArtistId"
    click_link(frame, "/chinook/Album.json?_shape=array&_size=1")
    page.wait_for_url(base + "chinook/Album.json?_shape=array&_size=1")
    assert json.loads(frame.locator("pre").inner_text())[0]["AlbumId"] == 1

    # A page script that sets location inside the frame hands the URL to the shell.
    frame.locator("body").evaluate("() => { location.href = '/chinook/Artist'; }")
    page.wait_for_url(base + "chinook/Artist", timeout=BOOT_MS)
    assert frame.locator("h1").inner_text(timeout=BOOT_MS).startswith("Artist")

    # A deep link opened in a new tab works on its own.
    tab = page.context.new_page()
    tab.goto(base + "chinook/Track/1?_glasshouse_mode=worker")
    assert "Track: 1" in tab.frame_locator(APP_FRAME).locator("h1").inner_text(timeout=BOOT_MS)


def test_worker_mode_handles_awkward_table_names_row_pages_and_json(
    page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "datasette-fixtures.db")
    base = live_gallery_server.gallery_url(gallery.pk)
    frame, count = open_table_in_worker_mode(
        page, base, "datasette-fixtures", "table/with/slashes.csv", "datasette-fixtures/table~2Fwith~2Fslashes~2Ecsv"
    )
    assert count.startswith("1 row")
    frame.locator("td.type-pk a").first.click()
    frame.locator("h1:has-text('table/with/slashes.csv: 3')").wait_for()
    page.goto(base + "datasette-fixtures/compound_three_primary_keys/a,a,a")
    assert "compound_three_primary_keys: a, a, a" in frame.locator("h1").inner_text(timeout=BOOT_MS)
    rows = frame.locator("body").evaluate(
        "() => fetch('/datasette-fixtures/table~2Fwith~2Fslashes~2Ecsv.json?_shape=array').then(r => r.json())"
    )
    assert rows == [{"pk": "3", "content": "hey"}]


def test_a_plugins_script_runs_in_worker_mode(
    page: Any, published_gallery: Any, live_gallery_server: Any, plugin_database: Path
) -> None:
    # The gallery of the plugin checks (every plugin of the default Datasette): the session's
    # build of that set, shared with tests/builder/test_catalog.py and test_plugins_in_browser.py.
    group = group_of("datasette-cluster-map", DEFAULT_DATASETTE_VERSION)
    gallery = published_gallery(plugin_database, group, DEFAULT_DATASETTE_VERSION, group_metadata(group))
    assert "datasette-cluster-map" in gallery.plugins
    base = live_gallery_server.gallery_url(gallery.pk)
    # The plugin's script comes from /-/static-plugins/ and fetches the rows as JSON through the Worker.
    frame = open_in_worker_mode(page, base + "plugins/places")
    markers = frame.locator("section.content > .leaflet-container :is(.leaflet-marker-icon, .marker-cluster)")
    markers.first.wait_for(timeout=BOOT_MS)


#: A page script's requests that Datasette answers with a redirect, and how a browser's fetch takes them.
REDIRECTS_PROBE = """async () => {
  const probe = async (url, init) => {
    try {
      const r = await fetch(url, init);
      return {status: r.status, type: r.type, redirected: r.redirected, url: r.url, body: r.status ? await r.text() : ""};
    } catch (error) { return {error: error.name}; }
  };
  const xhr = (url) => new Promise((resolve) => { const x = new XMLHttpRequest(); x.open('GET', url);
    x.onload = () => resolve({status: x.status, url: x.responseURL, body: x.responseText}); x.send(); });
  const sql = '/plugins.json?sql=select+1+as+n&_shape=array';
  return {
    sql: await probe(sql), sqlXhr: await xhr(sql), slash: await probe('/plugins/places/?_size=1'),
    manual: await probe('/plugins/places/', {redirect: 'manual'}), error: await probe('/plugins/places/', {redirect: 'error'}),
  };
}"""


@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_page_scripts_fetch_and_xhr_follow_redirects_in_worker_mode_as_in_a_browser(
    version: str, page: Any, published_gallery: Any, live_gallery_server: Any, plugin_database: Path
) -> None:
    # Plain Datasette on the plugin checks' database: the same build as their control gallery.
    gallery = published_gallery(plugin_database, (), version)
    base = live_gallery_server.gallery_url(gallery.pk)
    frame = open_in_worker_mode(page, base + "plugins")
    got = frame.locator("body").evaluate(REDIRECTS_PROBE)

    # Datasette 1.0 redirects /<db>.json?sql= to /<db>/-/query.json?sql=; 0.65 answers it itself.
    moved = version.startswith("1.")
    final = base + ("plugins/-/query.json?sql=select+1+as+n&_shape=array" if moved else "plugins.json?sql=select+1+as+n&_shape=array")
    assert (got["sql"]["status"], got["sql"]["redirected"], got["sql"]["url"]) == (200, moved, final), got["sql"]
    assert json.loads(got["sql"]["body"]) == [{"n": 1}]
    assert (got["sqlXhr"]["status"], got["sqlXhr"]["url"], json.loads(got["sqlXhr"]["body"])) == (200, final, [{"n": 1}])

    # Both redirect a trailing slash away, the query kept.
    slash = got["slash"]
    assert (slash["status"], slash["redirected"], slash["url"]) == (200, True, base + "plugins/places?_size=1"), slash
    assert "<h1" in slash["body"]
    assert (got["manual"]["type"], got["manual"]["status"], got["manual"]["body"]) == ("opaqueredirect", 0, "")
    assert got["error"] == {"error": "TypeError"}
