"""Every catalog plugin, with every Datasette version it is offered with, doing its visible work in Chromium.

The plugins of a Datasette version share one gallery (``plugin_data.plugin_groups``:
one set of all of them but those in ``plugin_data.SEPARATE``, which are checked on the
gallery of every plugin of the version instead): the real builder bundles a database made
to exercise every plugin (``plugin_data``) once per session (``prebuilt_bundle``; a set of
all the plugins of a version is the same build the catalog's Node checks boot), and the
gallery is live at the same content origin in every test (``lasting_gallery``). A reader opens
it in one browser tab kept for the module (``readers``): the Service Worker boots
Datasette in Pyodide once, then answers every later navigation, and the page's own
JavaScript runs. Each (plugin, version) pair is still its own test: its check in
``BROWSER_CHECKS`` navigates afresh and looks at what that plugin shows a reader (a
map with markers, an indented JSON cell, a chart, search results drawn by the plugin's
script, ...), and fails on an uncaught JavaScript error raised while it ran, or on anything
the gallery's Content-Security-Policy refused (the catalog lists each plugin's extra sources). Checks only
read (galleries are read-only), so one check's failure cannot make another pass.

The control: every check also runs on the gallery of Datasette alone (same version,
same database) and must fail there, so no check passes on Datasette's own output.

Map tiles come from the internet, which these machines do not reach: tiles fail
to load and the checks do not look at them.

Set ``GLASSHOUSE_E2E_SCREENSHOTS`` to a folder to keep a screenshot of the last
page of every check; a failing check always leaves one in its ``tmp_path``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from playwright.sync_api import Error as PlaywrightError

from builder.catalog import DATASETTE_VERSIONS, load_catalog
from tests.support.plugin_data import (
    DATABASE,
    MEDIA_ROWS,
    TILE_RGB,
    TILE_SIZE,
    TIMESTAMP,
    TIMESTAMP_TEXT,
    YOUTUBE_VIDEO,
    group_metadata,
    group_of,
    plugin_groups,
)

#: Milliseconds the first page may take: download, Pyodide and Datasette boot, reload.
BOOT_TIMEOUT = 120_000
#: Milliseconds a check waits for a plugin's output (and any element) on a booted gallery.
OUTPUT_TIMEOUT = 30_000
#: The same in the control, on a warm gallery of Datasette alone, where the output never comes:
#: a warm navigation takes about 0.2 s here, so this is ample for Datasette's own pages.
CONTROL_TIMEOUT = 3_000
#: In the control, once Datasette's page has loaded (its footer is there and the load event fired,
#: so every script of the page has run), the milliseconds a check still waits for the output it
#: opens the page for: no plugin is installed there, so no plugin's script can draw it later.
CONTROL_SETTLE = 1_000
#: Milliseconds a failing check's screenshot may take before the failure is reported without one.
SCREENSHOT_TIMEOUT = 5_000
#: A selector only Datasette's pages have (the loading page has no footer).
DATASETTE_PAGE = "footer"
#: Uncaught errors a plugin's own page raises in any browser, harmless to what it shows: ``(path
#: on the page's URL, start of the error, why)``. Every other uncaught error fails the check.
KNOWN_PAGE_ERRORS: tuple[tuple[str, str, str], ...] = (
    (
        "/-/tiles/",
        "Unexpected token 'export'",
        (
            "datasette-tiles 0.6.1's explorer also loads datasette-leaflet's ES module with a classic <script>, "
            "which cannot parse it; the map is drawn by the page's import() of the same module"
        ),
    ),
)


# --- the reader's browser ------------------------------------------------------------------


class Reader:
    """A reader's tab on one gallery: navigations, fetches through the Service Worker, and what went wrong.

    Collects uncaught page errors, console errors and failed answers of the
    gallery's own origin, so a failing check can say what the browser saw.
    ``start_check()`` opens a new record: ``page_errors``, ``console`` and
    ``bad_responses`` then hold only what happened since. ``timeout`` is the
    milliseconds a check waits for a plugin's output.
    """

    def __init__(self, page: Any, gallery_url: str) -> None:
        self.page = page
        self.base = gallery_url  # ends with "/"
        self.origin = gallery_url.rstrip("/")
        self.timeout = OUTPUT_TIMEOUT
        #: Milliseconds ``open`` waits for its selector after Datasette's page has loaded (the control's
        #: ``CONTROL_SETTLE``); ``None``: it waits for the selector alone, up to the timeout.
        self.settle: int | None = None
        self.booted = False
        #: Whether the last ``open`` with ``settle`` got Datasette's page loaded (before its selector's wait).
        self.page_loaded = False
        self.page_errors: list[str] = []
        self.console: list[str] = []
        self.bad_responses: list[str] = []
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("console", self._on_console)
        page.on("response", self._on_response)

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"[{message.type}] {message.text}")

    def _on_response(self, response: Any) -> None:
        if response.url.startswith(self.origin) and response.status >= 400:
            self.bad_responses.append(f"{response.status} {response.url}")

    def start_check(self) -> None:
        """Forget what earlier checks in this tab saw."""
        self.page_errors.clear()
        self.console.clear()
        self.bad_responses.clear()
        self.page_loaded = False

    def open(self, path: str, selector: str = DATASETTE_PAGE, timeout: int | None = None) -> None:
        """Go to ``path`` (relative to the gallery) and wait for ``selector``, each within ``timeout`` ms.

        The first navigation lands on the loading page, which reloads once the
        Service Worker has booted Datasette: by default it may take up to
        ``BOOT_TIMEOUT``, later ones ``self.timeout``. With ``self.settle`` set (and no
        ``timeout`` given), it first waits for Datasette's page and its load event within
        that time, then for ``selector`` only ``self.settle`` ms more.
        """
        wait = timeout or (self.timeout if self.booted else BOOT_TIMEOUT)
        self.page_loaded = False
        self.page.goto(self.base + path.lstrip("/"), timeout=wait)
        if self.settle is not None and timeout is None:
            self.page.wait_for_selector(DATASETTE_PAGE, timeout=wait)
            self.page.wait_for_load_state("load", timeout=wait)
            self.page_loaded = True
            wait = self.settle
        self.page.wait_for_selector(selector, timeout=wait)
        self.booted = True

    def fetch(self, path: str) -> dict[str, Any]:
        """Fetch ``path`` from the page's own JavaScript (so through the Service Worker)."""
        return self.page.evaluate(
            """async (path) => {
                const response = await fetch(path);
                return {status: response.status, type: response.headers.get('content-type') || '',
                        text: await response.text(), url: response.url};
            }""",
            path,
        )

    def report(self) -> str:
        """What the browser saw since ``start_check()``, for a failing check's message."""
        lines = ["What the browser saw:", f"  page: {self.page.url}"]
        for title, items in (
            ("uncaught page errors", self.page_errors),
            ("failed answers of the gallery", self.bad_responses),
            ("console errors and warnings", [c for c in self.console if "ERR_NAME_NOT_RESOLVED" not in c]),
        ):
            lines.append(f"  {title}: {len(items)}")
            lines += [f"    {item}" for item in items[:20]]
        return "\n".join(lines)


def _cell(reader: Reader, column: str, row: int = 1) -> Any:
    """The ``column`` cell of table row ``row`` (1-based) on the current table page."""
    return reader.page.locator(f"table.rows-and-columns tbody tr:nth-child({row}) td.col-{column}")


def _export_link(reader: Reader, label: str) -> Any:
    """The link ``label`` in the table page's "This data as ..." list, which must be visible."""
    link = reader.page.locator(".export-links a", has_text=re.compile(rf"^{re.escape(label)}$"))
    assert link.count() == 1 and link.is_visible(), reader.page.inner_text(".export-links")
    return link


def _fetch_bytes(reader: Reader, path: str) -> tuple[int, str, bytes]:
    """Fetch ``path`` from the page's own JavaScript: ``(status, content type, body bytes)``."""
    answer = reader.page.evaluate(
        """async (path) => {
            const response = await fetch(path);
            const bytes = new Uint8Array(await response.arrayBuffer());
            let binary = '';
            for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
            return {status: response.status, type: response.headers.get('content-type') || '', body: btoa(binary)};
        }""",
        path,
    )
    return answer["status"], answer["type"], base64.b64decode(answer["body"])


def _sql(reader: Reader, sql: str, column: str) -> str:
    """Run ``sql`` on the database's query page (0.65 URL; 1.0 redirects it) and return ``column``'s first cell."""
    reader.open(f"{DATABASE}?sql={quote_plus(sql)}", f"td.col-{column}")
    return reader.page.inner_text(f"td.col-{column}").strip()


# --- what each plugin visibly does ------------------------------------------------------------


def check_cluster_map(reader: Reader, version: str) -> None:
    # The plugin's script fetches the rows as JSON and clusters them on a Leaflet map above the table.
    reader.open(f"{DATABASE}/places", ".leaflet-container")
    the_map = reader.page.locator("section.content > .leaflet-container")
    assert the_map.count() == 1 and the_map.is_visible()
    box = the_map.bounding_box()
    assert box["width"] > 300 and box["height"] > 200, box
    reader.page.wait_for_selector(
        "section.content > .leaflet-container :is(.leaflet-marker-icon, .marker-cluster)", timeout=reader.timeout
    )
    markers = the_map.locator("img.leaflet-marker-icon:not(.marker-cluster)")
    clusters = the_map.locator(".marker-cluster")
    in_clusters = sum(int(text) for text in clusters.all_inner_texts())
    assert markers.count() + in_clusters == 2, (markers.count(), clusters.all_inner_texts())
    assert markers.first.is_visible() if markers.count() else clusters.first.is_visible()


def check_leaflet_geojson(reader: Reader, version: str) -> None:
    # Each point cell becomes a small Leaflet map with one marker.
    reader.open(f"{DATABASE}/places", "td.col-geometry .leaflet-container .leaflet-marker-icon")
    reader.page.wait_for_function(
        "() => document.querySelectorAll('td.col-geometry .leaflet-container .leaflet-marker-icon').length === 2"
    )
    assert _cell(reader, "geometry", 2).locator(".leaflet-marker-icon").is_visible()
    # A polygon cell gets a map with the shape drawn as an SVG path.
    reader.open(f"{DATABASE}/areas", "td.col-geometry .leaflet-container path.leaflet-interactive")
    shape = _cell(reader, "geometry").locator(".leaflet-container path.leaflet-interactive")
    assert shape.count() == 1 and shape.is_visible()
    box = shape.bounding_box()
    assert box["width"] > 20 and box["height"] > 20, box


def check_geojson(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/places", ".export-links")
    href = _export_link(reader, "geojson").get_attribute("href")
    answer = reader.fetch(href)
    assert answer["status"] == 200, answer
    data = json.loads(answer["text"])
    assert data["type"] == "FeatureCollection"
    assert [f["properties"]["name"] for f in data["features"]] == ["London", "Paris"]
    assert data["features"][0]["geometry"] == {"type": "Point", "coordinates": [-0.1278, 51.5074]}


def check_geojson_map(reader: Reader, version: str) -> None:
    # The plugin's script fetches the table's .geojson and draws every geometry on one map above the rows.
    reader.open(f"{DATABASE}/places", ".table-wrapper > #map.leaflet-container .leaflet-marker-icon")
    the_map = reader.page.locator(".table-wrapper > #map.leaflet-container")
    reader.page.wait_for_function(
        "() => document.querySelectorAll('.table-wrapper > #map .leaflet-marker-icon').length === 2"
    )
    box = the_map.bounding_box()
    assert box["width"] > 300 and box["height"] > 200, box
    # A polygon is drawn as a shape.
    reader.open(f"{DATABASE}/areas", ".table-wrapper > #map path.leaflet-interactive")
    assert reader.page.locator(".table-wrapper > #map path.leaflet-interactive").is_visible()


def _tile_images(reader: Reader) -> list[list[int]]:
    """``[naturalWidth, naturalHeight, r, g, b]`` of each loaded Leaflet tile on the page (its centre pixel)."""
    return reader.page.evaluate(
        """() => [...document.querySelectorAll('img.leaflet-tile-loaded')].map((img) => {
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(img, 0, 0);
            const [r, g, b] = context.getImageData(img.naturalWidth / 2, img.naturalHeight / 2, 1, 1).data;
            return [img.naturalWidth, img.naturalHeight, r, g, b];
        })"""
    )


def check_tiles(reader: Reader, version: str) -> None:
    reader.open("-/tiles", "a[href='/-/tiles/plugins']")
    reader.page.click("a[href='/-/tiles/plugins']")
    # The explorer draws a Leaflet map whose tiles the plugin serves from the database's tiles table.
    reader.page.wait_for_selector("#explorer img.leaflet-tile-loaded", timeout=reader.timeout)
    assert reader.page.inner_text("h1").strip() == "Glasshouse tiles"
    assert [TILE_SIZE, TILE_SIZE, *TILE_RGB] in _tile_images(reader)
    status, content_type, body = _fetch_bytes(reader, "/-/tiles/plugins/0/0/0.png")
    assert status == 200 and content_type == "image/png" and body.startswith(b"\x89PNG")


def check_basemap(reader: Reader, version: str) -> None:
    # The basemap database is attached and holds OpenStreetMap tiles; datasette-tiles (offered with the
    # same versions) draws them, from the reader's browser alone.
    reader.open("basemap", "a[href$='/basemap/tiles']")
    reader.open("-/tiles/basemap", "#explorer img.leaflet-tile-loaded")
    tiles = _tile_images(reader)
    assert tiles and all(tile[:2] == [256, 256] for tile in tiles), tiles
    assert any(tile[2:] != [*TILE_RGB] for tile in tiles), tiles


def check_haversine(reader: Reader, version: str) -> None:
    assert _sql(reader, "select round(haversine(51.5074, -0.1278, 48.8566, 2.3522)) as km", "km") == "344.0"


def check_vega(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "text=Show charting options")
    reader.page.click("text=Show charting options")
    # The click's handler shows the form: wait for it (under load it comes after the click returns).
    form = reader.page.locator("form#graphForm.datasette-vega")
    form.wait_for(state="visible")
    form.locator("input[name=mark][value=bar]").check()
    form.locator("select[name=x_column]").select_option("title")
    form.locator("select[name=x_type]").select_option("nominal")
    form.locator("select[name=y_column]").select_option("n")
    form.locator("select[name=y_type]").select_option("quantitative")
    # Vega draws the bars on a canvas: count pixels of its default bar colour (#4c78a8).
    bar_pixels = reader.page.wait_for_function(
        """() => {
            const canvas = document.querySelector('.vega-embed canvas');
            if (!canvas || !canvas.width) return false;
            const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4)
                if (Math.abs(d[i] - 76) < 8 && Math.abs(d[i + 1] - 120) < 8 && Math.abs(d[i + 2] - 168) < 8) n++;
            return n > 500 && n;
        }""",
        timeout=reader.timeout,
    ).json_value()
    assert bar_pixels > 500
    assert reader.page.locator(".vega-embed canvas").is_visible()


def check_plot(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "button:text-is('Show Plot')")
    reader.page.click("button:text-is('Show Plot')")
    # Observable Plot draws one dot per row.
    dots = reader.page.locator(".datasette-plot svg g[aria-label=dot] circle")
    dots.first.wait_for(timeout=reader.timeout)
    assert dots.count() == 3
    assert reader.page.locator(".datasette-plot svg").first.is_visible()


def check_nteract_data_explorer(reader: Reader, version: str) -> None:
    # The plugin's script mounts nteract's data explorer above the table; opened, it fetches the rows
    # as JSON and shows them in its grid (the raw timestamps: the table shows them as dates).
    button = ".datasette-data-explorer button:text-is('View (3 rows) in Data Explorer')"
    reader.open(f"{DATABASE}/notes", button)
    reader.page.click(button)
    reader.page.locator("button:text-is('Show Data Explorer Settings')").wait_for()
    explorer = reader.page.locator(".datasette-data-explorer")
    explorer.get_by_text(str(TIMESTAMP), exact=True).first.wait_for()
    assert explorer.get_by_text(str(TIMESTAMP), exact=True).count() == 3
    for title in ("Tomato soup", "Bread", "Pesto"):
        assert explorer.get_by_text(title, exact=True).first.is_visible(), title


def check_statistics(reader: Reader, version: str) -> None:
    assert _sql(reader, "select statistics_median(n) as median from notes", "median") == "5.0"
    assert _sql(reader, "select statistics_mean(n) as mean from notes", "mean") == "6.0"


def check_pretty_json(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "td.col-payload pre")
    cell = _cell(reader, "payload").locator("pre")
    assert cell.is_visible()
    assert cell.inner_text() == '{\n    "serves": 4,\n    "ingredients": [\n        "tomato",\n        "basil"\n    ]\n}'


def check_render_markdown(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "td.col-body_markdown h2")
    cell = _cell(reader, "body_markdown")
    assert cell.locator("h2").inner_text() == "Tomato soup"
    assert cell.locator("em").inner_text() == "slowly"
    assert "#" not in cell.inner_text() and "*" not in cell.inner_text()
    assert _cell(reader, "body_markdown", 2).locator("strong").inner_text() == "well"


def check_render_images(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/images", "td.col-image img")
    image = _cell(reader, "image").locator("img")
    image.wait_for()
    reader.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [2, 2]
    assert image.is_visible()


def check_render_binary(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/blobs", "td.col-data")
    text = _cell(reader, "data").inner_text()
    assert text.startswith("Suggestion: gz (application/gzip)"), text
    assert "1F 8B 08" in text


def check_render_html(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "td.col-html mark")
    assert _cell(reader, "html").locator("mark").inner_text() == "highlighted"
    assert _cell(reader, "html").inner_text().strip() == "highlighted"  # no escaped tags shown
    assert _cell(reader, "html", 2).locator("em").inner_text() == "plain"


def check_json_html(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "td.col-link a")
    link = _cell(reader, "link").locator("a")
    assert link.get_attribute("href") == "https://example.com/soup"
    assert link.inner_text() == "Soup recipe"
    assert link.is_visible()


def check_render_timestamps(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", "td.col-created")
    assert [c.strip() for c in reader.page.locator("td.col-created").all_inner_texts()] == [TIMESTAMP_TEXT] * 3


def check_youtube_embed(reader: Reader, version: str) -> None:
    # The cell becomes a lite-youtube player: its script adds a play button and YouTube's thumbnail.
    reader.open(f"{DATABASE}/media", "td.col-video lite-youtube button.lyt-playbtn")
    player = _cell(reader, "video").locator("lite-youtube")
    assert player.get_attribute("videoid") == YOUTUBE_VIDEO
    assert f"https://i.ytimg.com/vi/{YOUTUBE_VIDEO}/hqdefault.jpg" in player.evaluate("el => el.style.backgroundImage")
    assert player.is_visible()
    # A click puts YouTube's own player in a frame (it cannot load here: no internet).
    player.locator("button.lyt-playbtn").click()
    frame = player.locator("iframe")
    frame.wait_for(state="attached")
    assert frame.get_attribute("src").startswith(
        f"https://www.youtube-nocookie.com/embed/{YOUTUBE_VIDEO}?start=30&autoplay=1"
    ), frame.get_attribute("src")
    # Safari and mobile browsers take the player API path: its script comes from www.youtube.com.
    api_script = reader.page.evaluate(
        """async () => {
            const player = document.createElement('lite-youtube');
            player.setAttribute('videoid', 'M7lc1UVf-VE');
            player.setAttribute('js-api', '');
            document.querySelector('section.content').append(player);
            await player.getYTPlayer().catch(() => null);  // the script cannot load here: no internet
            return player.querySelector('script').src;
        }"""
    )
    assert api_script == "https://www.youtube.com/iframe_api"


def check_mp3_audio(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/media", "td.col-audio audio")
    audios = reader.page.locator("td.col-audio audio")
    assert [a.get_attribute("src") for a in audios.all()] == [row[3] for row in MEDIA_ROWS]
    assert audios.first.get_attribute("controls") is not None and audios.first.is_visible()
    # Its script adds a button that plays every MP3 of the page in turn.
    button = reader.page.locator("button", has_text="MP3s on this page")
    assert button.inner_text() == "Play 2 MP3s on this page" and button.is_visible()
    # The browser has tried to load each file (they fail here: no internet), so a refusal by the
    # gallery's Content-Security-Policy would be on the console by now.
    reader.page.wait_for_function(
        "() => [...document.querySelectorAll('td.col-audio audio')].every(a => a.error || a.readyState > 0)",
        timeout=reader.timeout,
    )


def check_dateutil(reader: Reader, version: str) -> None:
    assert _sql(reader, "select dateutil_parse('10 october 2020 3pm') as parsed", "parsed") == "2020-10-10T15:00:00"
    assert _sql(reader, "select dateutil_easter(2026) as easter", "easter") == "2026-04-05"


def check_simple_html(reader: Reader, version: str) -> None:
    assert _sql(reader, "select html_strip_tags('<b>Bold</b> text') as stripped", "stripped") == "Bold text"
    assert _sql(reader, "select html_unescape('a &lt; b') as unescaped", "unescaped") == "a < b"


def check_sqlite_url_lite(reader: Reader, version: str) -> None:
    assert _sql(reader, "select url_host('https://datasette.io/plugins?q=x') as host", "host") == "datasette.io"
    assert _sql(reader, "select url_valid('not a url') as valid", "valid") == "0"


def check_explain(reader: Reader, version: str) -> None:
    # Below the SQL editor, the plugin's script fetches the query's plan and draws it.
    sql = "select title from notes where n > 3"
    reader.open(f"{DATABASE}?sql={quote_plus(sql)}", "h3:text-is('Explain query plan')")
    plan = reader.page.locator("form.sql li").all_inner_texts()
    assert [line.strip() for line in plan] == ["SCAN notes"], plan
    assert reader.page.locator("form.sql h3:text-is('Tables used by this query')").is_visible()
    assert reader.page.locator("form.sql h4").all_inner_texts() == ["notes"]


def check_query_links(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/media", "td.col-query a")
    link = _cell(reader, "query").locator("a")
    assert link.inner_text() == MEDIA_ROWS[0][4]
    assert _cell(reader, "query", 2).locator("a").count() == 0  # "not sql" stays text
    link.click()
    # The link runs the query: the notes with n > 3.
    reader.page.wait_for_selector("td.col-title")
    assert [t.strip() for t in reader.page.locator("td.col-title").all_inner_texts()] == ["Bread", "Pesto"]


def check_yaml(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", ".export-links")
    answer = reader.fetch(_export_link(reader, "yaml").get_attribute("href"))
    assert answer["status"] == 200, answer
    assert answer["text"].startswith("- id: 1\n  title: Tomato soup\n"), answer["text"]
    assert "- id: 3\n  title: Pesto\n" in answer["text"]


def check_search_all(reader: Reader, version: str) -> None:
    reader.open("-/search", "#search-all-q")
    reader.page.fill("#search-all-q", "london")
    reader.page.press("#search-all-q", "Enter")
    reader.page.wait_for_url(re.compile(r"/-/search\?q=london$"))
    # The page's script searches every full-text-indexed table and draws a section per table with hits.
    results = reader.page.locator("#search-all-results")
    reader.page.wait_for_function(
        "() => document.querySelectorAll('#search-all-results h2').length === 2", timeout=reader.timeout
    )
    headings = sorted(h.strip() for h in results.locator("h2").all_inner_texts())
    assert headings == ["1 result in plugins: areas", "1 result in plugins: places"], headings
    text = results.inner_text()
    assert "Central London" in text and "London" in text
    assert "Paris" not in text and "Tomato" not in text
    # It searched the third indexed table too, and says it found nothing there. (Under Datasette 1.0a41
    # it also searches recipes_fts4, an FTS4 index of its own that 0.65.5 hides.) Each table's answer
    # arrives on its own: the line may come after the hits.
    reader.page.wait_for_function(
        "() => (document.querySelector('#search-all-no-results') || {innerText: ''}).innerText"
        ".includes('No results in plugins: notes')",
        timeout=reader.timeout,
    )
    no_results = [line.strip() for line in reader.page.inner_text("#search-all-no-results").splitlines() if line.strip()]
    assert "No results in plugins: notes" in no_results, no_results
    assert results.locator("table").first.is_visible()


def check_sqlite_fts4(reader: Reader, version: str) -> None:
    sql = (
        "select title, round(rank_bm25(matchinfo(recipes_fts4, 'pcnalx')), 4) as rank"
        " from recipes_fts4 where recipes_fts4 match 'tomato' order by rank"
    )
    reader.open(f"{DATABASE}?sql={quote_plus(sql)}", "td.col-rank")
    assert [t.strip() for t in reader.page.locator("td.col-title").all_inner_texts()] == ["Tomato soup", "Tomato salad"]
    assert [t.strip() for t in reader.page.locator("td.col-rank").all_inner_texts()] == ["-1.2253", "-1.0049"]


def check_query_history(reader: Reader, version: str) -> None:
    # The plugin's script keeps each query run on the query page in the reader's localStorage, and lists them.
    for sql in ("select 1 as one", "select 2 as two"):
        reader.open(f"{DATABASE}?sql={quote_plus(sql)}", "button:text-is('Query History')")
    reader.page.click("button:text-is('Query History')")
    history = reader.page.locator("#query-history-table td.previous-query")
    history.first.wait_for()
    assert history.all_inner_texts()[:2] == ["select 2 as two", "select 1 as one"]
    assert reader.page.locator("#query-history-table").is_visible()


def check_copyable(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", ".export-links")
    _export_link(reader, "copyable").click()
    reader.page.wait_for_selector("textarea.copyable")
    for name in ("tsv", "github", "latex", "html", "jira", "mediawiki", "rst"):
        assert reader.page.locator(f"a:text-is('{name}')").is_visible(), name
    assert reader.page.input_value("textarea.copyable").startswith("id\ttitle\tbody_markdown")
    reader.page.click("a:text-is('github')")
    reader.page.wait_for_url(re.compile(r"_table_format=github"))
    table = reader.page.input_value("textarea.copyable")
    assert "|------|" in table and "| Tomato soup |" in table, table
    # The copy button is added by the page's script; clicking it says so.
    button = reader.page.locator("button.copyable-copy-button")
    button.click()
    assert button.inner_text() == "Copied!"


def check_export_notebook(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", ".export-links")
    _export_link(reader, "Notebook").click()
    reader.page.wait_for_selector("h1:has-text('Export 3 rows to a notebook')")
    code = reader.page.inner_text("section.content")
    url = f"{reader.origin}/{DATABASE}/notes.json?_shape=array"
    assert f'pandas.read_json(\n    "{url}"\n)' in code, code
    # The URL it gives a notebook answers with the rows.
    answer = reader.fetch(url)
    assert answer["status"] == 200
    assert [row["title"] for row in json.loads(answer["text"])] == ["Tomato soup", "Bread", "Pesto"]


def check_ics(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/events", ".export-links")
    answer = reader.fetch(_export_link(reader, "ics").get_attribute("href"))
    assert answer["status"] == 200
    assert answer["type"].startswith("text/calendar")
    for line in ("BEGIN:VCALENDAR", "SUMMARY:Launch party", "DTSTART:20300501T180000Z", "DTEND:20300501T210000Z"):
        assert line in answer["text"].splitlines(), answer["text"]


def check_xlsx(reader: Reader, version: str) -> None:
    reader.open(f"{DATABASE}/notes", ".export-links")
    status, content_type, body = _fetch_bytes(reader, _export_link(reader, "xlsx").get_attribute("href"))
    assert status == 200 and content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    with zipfile.ZipFile(io.BytesIO(body)) as workbook:
        sheet = workbook.read("xl/worksheets/sheet1.xml").decode()
        strings = workbook.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in workbook.namelist() else ""
    for title in ("Tomato soup", "Bread", "Pesto"):
        assert title in sheet + strings, (title, sheet[:2000])


def check_dashboards(reader: Reader, version: str) -> None:
    reader.open("-/dashboards", "a:text-is('Glasshouse overview')")
    reader.page.click("a:text-is('Glasshouse overview')")
    reader.page.wait_for_url(re.compile(r"/-/dashboards/overview$"))
    assert reader.page.inner_text("h1").strip() == "Glasshouse overview"
    assert reader.page.locator("#chart-intro h2").inner_text() == "Dashboard notes"
    assert reader.page.locator("#card-note-count .dashboard-card-title").inner_text().strip() == "Notes"
    # The metric is drawn by the dashboard's script from its SQL query.
    metric = reader.page.locator("#chart-note-count")
    metric.locator("text=3 notes").wait_for(timeout=reader.timeout)
    assert metric.is_visible()


def check_block_robots(reader: Reader, version: str) -> None:
    reader.open("", DATASETTE_PAGE)
    answer = reader.fetch("/robots.txt")
    assert answer["status"] == 200
    assert answer["type"].startswith("text/plain")
    assert answer["text"].strip() == "User-agent: *\nDisallow: /"


#: For each catalog plugin: what it visibly does in a reader's browser.
BROWSER_CHECKS: dict[str, Callable[[Reader, str], None]] = {
    "datasette-cluster-map": check_cluster_map,
    "datasette-leaflet-geojson": check_leaflet_geojson,
    "datasette-geojson": check_geojson,
    "datasette-geojson-map": check_geojson_map,
    "datasette-tiles": check_tiles,
    "datasette-basemap": check_basemap,
    "datasette-haversine": check_haversine,
    "datasette-vega": check_vega,
    "datasette-plot": check_plot,
    "datasette-nteract-data-explorer": check_nteract_data_explorer,
    "datasette-statistics": check_statistics,
    "datasette-pretty-json": check_pretty_json,
    "datasette-render-markdown": check_render_markdown,
    "datasette-render-images": check_render_images,
    "datasette-render-binary": check_render_binary,
    "datasette-render-html": check_render_html,
    "datasette-json-html": check_json_html,
    "datasette-render-timestamps": check_render_timestamps,
    "datasette-youtube-embed": check_youtube_embed,
    "datasette-mp3-audio": check_mp3_audio,
    "datasette-dateutil": check_dateutil,
    "datasette-simple-html": check_simple_html,
    "datasette-sqlite-url-lite": check_sqlite_url_lite,
    "datasette-explain": check_explain,
    "datasette-query-links": check_query_links,
    "datasette-search-all": check_search_all,
    "datasette-sqlite-fts4": check_sqlite_fts4,
    "datasette-query-history": check_query_history,
    "datasette-copyable": check_copyable,
    "datasette-export-notebook": check_export_notebook,
    "datasette-yaml": check_yaml,
    "datasette-ics": check_ics,
    "datasette-xlsx": check_xlsx,
    "datasette-dashboards": check_dashboards,
    "datasette-block-robots": check_block_robots,
}

#: Every (plugin, Datasette version) pair a publisher may choose, gallery by gallery
#: (``plugin_groups``; each plugin in the gallery ``group_of`` names), so the tests of one gallery
#: run one after another in its tab.
PAIRS = [
    (name, version)
    for version in DATASETTE_VERSIONS
    for group in plugin_groups(version)
    for name in group
    if group_of(name, version) == group
]
PAIR_IDS = [f"{name}-{version}" for name, version in PAIRS]


def test_every_catalog_plugin_has_a_browser_check() -> None:
    assert set(BROWSER_CHECKS) == set(load_catalog())


def test_every_offered_pair_is_checked_once() -> None:
    offered = [(name, v) for name, plugin in load_catalog().items() for v in DATASETTE_VERSIONS if plugin.offered_with(v)]
    assert sorted(PAIRS) == sorted(offered)


# --- one tab per gallery, kept across tests -------------------------------------------------------


class Readers:
    """Browser tabs kept across the module's tests, one gallery at a time.

    ``reader_for(url, timeout)`` returns the open tab if it shows that gallery, else closes
    it (its browser context: Service Worker, caches) and opens a fresh context on
    the new gallery, so at most one booted Pyodide holds memory. Tests of one
    gallery that run in a row boot it once. ``timeout`` (ms) becomes the tab's
    default and its ``Reader.timeout``.
    """

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.context: Any = None
        self.current: Reader | None = None

    def reader_for(self, gallery_url: str, timeout: int = OUTPUT_TIMEOUT) -> Reader:
        if self.current is None or self.current.base != gallery_url or self.current.page.is_closed():
            self.close()
            self.context = self.browser.new_context()
            self.current = Reader(self.context.new_page(), gallery_url)
        self.current.timeout = timeout
        self.current.settle = None
        self.current.page.set_default_timeout(timeout)
        self.current.start_check()
        return self.current

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context, self.current = None, None


@pytest.fixture(scope="module")
def readers(browser: Any) -> Iterator[Readers]:
    """The module's ``Readers``; the last tab is closed after the module."""
    tabs = Readers(browser)
    try:
        yield tabs
    finally:
        tabs.close()


def screenshot(reader: Reader, name: str, folder: Path) -> str:
    """Save a full-page screenshot of the tab as ``folder/<name>.png``; return its path, or why there is none.

    It waits at most ``SCREENSHOT_TIMEOUT`` ms: a tab that stopped drawing must not hide the
    error that asked for the screenshot behind a timeout of its own.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{name}.png"
    try:
        reader.page.screenshot(path=str(shot), full_page=True, timeout=SCREENSHOT_TIMEOUT)
    except PlaywrightError as exc:
        return f"none ({str(exc).splitlines()[0]})"
    return str(shot)


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(("name", "version"), PAIRS, ids=PAIR_IDS)
def test_the_plugin_works_in_the_readers_browser(
    name: str, version: str, lasting_gallery: Callable[..., Any], plugin_database: Path, readers: Readers, tmp_path: Path
) -> None:
    group = group_of(name, version)
    gallery = lasting_gallery(plugin_database, group, version, group_metadata(group))
    assert name in gallery.plugins and gallery.datasette_version == version
    reader = readers.reader_for(gallery.url)
    try:
        BROWSER_CHECKS[name](reader, version)
        unexpected = [
            error for error in reader.page_errors
            if not any(path in error.split(": ", 1)[0] and error.split(": ", 1)[1].startswith(start)
                       for path, start, _why in KNOWN_PAGE_ERRORS)
        ]  # fmt: skip
        assert not unexpected, "the page's JavaScript failed"
        # The gallery's Content-Security-Policy (builder/csp.py) allows what the plugin needs: the
        # catalog lists its extra sources; Chromium reports each refusal on the console.
        refused = [line for line in reader.console if "Content Security Policy" in line]
        assert not refused, "the gallery's Content-Security-Policy refused what the plugin needs"
    except Exception as exc:
        shot = screenshot(reader, f"{name}-{version}", tmp_path)
        report = reader.report()
        # The next test of this gallery starts in a fresh tab, not in whatever state this one was left.
        readers.close()
        raise AssertionError(f"{name} with Datasette {version}: {exc}\nScreenshot: {shot}\n{report}") from exc
    if folder := os.environ.get("GLASSHOUSE_E2E_SCREENSHOTS"):
        screenshot(reader, f"{name}-{version}", Path(folder))


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(("name", "version"), PAIRS, ids=PAIR_IDS)
def test_the_check_fails_without_its_plugin(
    name: str, version: str, lasting_gallery: Callable[..., Any], plugin_database: Path, readers: Readers
) -> None:
    """The same check on the gallery of Datasette alone (same version and database) fails.

    A new tab first opens the home page with a boot's patience, so Datasette is
    booted and warm; the check then waits only ``CONTROL_TIMEOUT`` for the output
    that never comes. The page it last opened must have loaded within that time (so Datasette
    answered while the check failed), or else Datasette must answer a table page within it after.
    Where the check opens a page for its output, it waits for Datasette's page to load
    (within ``CONTROL_TIMEOUT``), then ``CONTROL_SETTLE`` for the output.

    The controls of a gallery run one after another in its tab, each ending on a page Datasette
    answered a moment ago: navigations, and that page's keep-alive pings, are events that keep the
    Service Worker running (a browser stops one after about 30 s without any), so a later control
    finds Datasette warm without opening the home page first (a navigation costs Chromium about
    0.6 CPU-seconds here).
    """
    gallery = lasting_gallery(plugin_database, (), version)
    assert gallery.plugins == [] and gallery.datasette_version == version
    reader = readers.reader_for(gallery.url, timeout=CONTROL_TIMEOUT)
    reader.settle = CONTROL_SETTLE
    if not reader.booted:
        reader.open("", DATASETTE_PAGE, timeout=BOOT_TIMEOUT)  # a new tab: a cold boot
    with pytest.raises((AssertionError, PlaywrightError)):
        BROWSER_CHECKS[name](reader, version)
    # It failed for want of the plugin's output, not because Datasette stopped answering in time:
    # the page the check last opened had loaded (within CONTROL_TIMEOUT) when it failed, or else
    # Datasette must answer another page within that time now.
    if not reader.page_loaded:
        reader.open(f"{DATABASE}/notes", "td.col-title")
