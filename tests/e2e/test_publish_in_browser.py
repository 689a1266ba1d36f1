"""Publish a real database through the web form and use it in Chromium, answered by the Service Worker.

One test per database: the form, the live build page, moderation, the loading page,
then Datasette itself (tables, rows, sort, facets, filters, SQL, exports, page scripts,
a plugin), deep links, no new downloads after the first visit, and a Service Worker
restart.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.signals import request_started

from gallery.models import Build, Gallery
from gallery.services import moderation
from tests.support.service_worker import stop_service_worker, wait_until_taken_down

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@dataclass(frozen=True)
class Case:
    file: str
    database: str  # name in Datasette URLs, from the file name
    table_link: str  # link text on the database page
    table_heading: str
    table_count: str
    sql: str
    sql_column: str
    sql_answer: str
    deep_link: str
    deep_text: str
    facet_url: str
    json_url: str
    json_first: dict[str, Any]
    csv_url: str
    csv_header: str
    metadata: str = ""  # typed into the form's metadata box
    canned_query: tuple[str, str] = ("", "")  # (path, text the page shows)


CASES = [
    Case(
        file="chinook.sqlite",
        database="chinook",
        table_link="Album",
        table_heading="Album",
        table_count="347 rows",
        sql="select count(*) as n from Track where GenreId = 1",
        sql_column="n",
        sql_answer="1297",
        deep_link="chinook/Track/1",
        deep_text="Track: 1",
        facet_url="chinook/Track?_sort_desc=Milliseconds&_facet=MediaTypeId&GenreId=1",
        json_url="/chinook/Album.json?_shape=array&_size=2",
        json_first={"AlbumId": 1, "Title": "For Those About To Rock We Salute You", "ArtistId": 1},
        csv_url="/chinook/Album.csv?_size=2",
        csv_header="AlbumId,Title,ArtistId",
        metadata=(
            "license: CC BY 4.0\n"
            "databases:\n"
            "  chinook:\n"
            "    queries:\n"
            "      longest_tracks:\n"
            "        title: The ten longest tracks\n"
            "        sql: select Name, Milliseconds from Track order by Milliseconds desc limit 10\n"
        ),
        canned_query=("chinook/longest_tracks", "Occupation / Precipice\t5286953"),
    ),
    Case(
        file="datasette-fixtures.db",
        database="datasette-fixtures",
        table_link="table/with/slashes.csv",
        table_heading="table/with/slashes.csv",
        table_count="1 row",
        sql="select count(*) as n from facetable where state = 'CA'",
        sql_column="n",
        sql_answer="10",
        deep_link="datasette-fixtures/compound_three_primary_keys/a,a,a",
        deep_text="compound_three_primary_keys: a, a, a",
        facet_url="datasette-fixtures/facetable?_facet=state&_sort=pk&on_earth=1",
        json_url="/datasette-fixtures/table~2Fwith~2Fslashes~2Ecsv.json?_shape=array",
        json_first={"pk": "3", "content": "hey"},
        csv_url="/datasette-fixtures/table~2Fwith~2Fslashes~2Ecsv.csv",
        csv_header="pk,content",
    ),
]


class ServerHits:
    """Counts requests the live server receives for one host (``request_started`` carries the WSGI environ)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, sender: Any, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if environ and environ.get("HTTP_HOST") == self.host:
            with self._lock:
                self.paths.append(environ.get("PATH_INFO", ""))

    def since(self, start: int) -> list[str]:
        # A Service Worker update check revalidates /sw.js; it is no download of bundle files.
        with self._lock:
            return [p for p in self.paths[start:] if p != "/sw.js"]


def publish_through_the_form(page: Any, app_url: str, path: Path, title: str, metadata: str = "") -> str:
    """Fill and submit /publish/ like a publisher; return the build page URL.

    Also checks that the upload progress bar was shown while the file was sent.
    """
    page.goto(f"{app_url}/publish/")
    # sessionStorage outlives the navigation to the build page, so the observer's note survives.
    page.evaluate(
        """() => { sessionStorage.removeItem('progressSeen');
        new MutationObserver(() => { if (!document.getElementById('upload-progress').hidden) sessionStorage.setItem('progressSeen', '1'); })
          .observe(document.getElementById('upload-progress'), {attributes: true}); }"""
    )
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=title]", title)
    page.fill("textarea[name=description]", f"{title}, published by the end-to-end test")
    page.check("input[name=plugins][value=datasette-pretty-json]")
    if metadata:
        page.fill("textarea[name=metadata]", metadata)
    page.click("#publish-button")
    page.wait_for_url(re.compile(r"/builds/[a-z0-9]{16}/$"), timeout=30_000)
    assert page.evaluate("sessionStorage.getItem('progressSeen')") == "1", "the upload progress bar was not shown"
    return page.url


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_a_published_database_works_in_the_readers_browser(
    case: Case, page: Any, browser: Any, live_gallery_server: Any, celery_worker: Any, shared_data: Path
) -> None:
    # --- The publisher uploads through the form and watches the build page update by itself.
    build_url = publish_through_the_form(
        page, live_gallery_server.url, shared_data / case.file, f"E2E {case.file}", case.metadata
    )
    page.wait_for_selector("#outcome :text('waiting for a moderator')", timeout=180_000)
    log = page.inner_text("#log")
    for step in ("== Validating the database", "== Resolving Datasette and plugins", "== Writing the bundle", "== Uploading the bundle"):
        assert step in log
    build = Build.objects.select_related("gallery").get(pk=build_url.rstrip("/").rsplit("/", 1)[1])
    assert build.state == "ready"
    gallery = build.gallery
    assert gallery.database_name == case.database

    # Nothing is public before moderation allows it.
    pending = page.context.new_page()
    assert pending.goto(gallery.url).status == 404
    pending.close()
    moderation.approve(gallery, build=build.pk)
    page.reload()
    link = page.locator("#outcome a", has_text=gallery.url)
    assert link.get_attribute("href") == gallery.url

    # --- A reader opens a deep link into the gallery for the first time: the loading page shows progress.
    host = gallery.url.split("//", 1)[1].rstrip("/")
    hits = ServerHits(host)
    request_started.connect(hits, weak=False)
    try:
        reader = page.context.new_page()
        reader.goto(gallery.url + case.facet_url)
        reader.wait_for_function(
            "() => { const d = document.querySelector('#detail'); return d && / MB of [0-9.]+ MB downloaded/.test(d.textContent); }",
            timeout=30_000,
        )
        reader.wait_for_selector(".facet-info", timeout=120_000)  # the Service Worker answered the same URL
        assert "rows" in reader.inner_text("h3")
        # The loading page counted its reload in the tab; the page the Service Worker answered forgot it
        # (keepalive.mjs), so a later fallback to the server in this tab gets its reloads too.
        reader.wait_for_function("() => sessionStorage.getItem('glasshouse-reloads') === null", timeout=10_000)

        # Database page, then the table through its link (awkward names included).
        first_visit = len(hits.paths)
        reader.goto(gallery.url + case.database)
        reader.click(f"a:text-is('{case.table_link}')")
        reader.wait_for_selector("table.rows-and-columns")
        assert reader.inner_text("h1").strip().startswith(case.table_heading)
        assert reader.inner_text("h3").strip().startswith(case.table_count)

        # Page JavaScript runs: Datasette's column cog menu opens.
        reader.locator("th .dropdown-menu-icon").first.click()
        assert reader.locator(".dropdown-menu").first.is_visible()
        assert "Sort" in reader.locator(".dropdown-menu").first.inner_text()

        # Arbitrary SQL.
        reader.goto(gallery.url + f"{case.database}?sql={case.sql}")
        assert reader.inner_text(f"td.col-{case.sql_column}").strip() == case.sql_answer

        # JSON and CSV exports, fetched by the page itself (so through the Service Worker).
        rows = reader.evaluate(f"fetch({case.json_url!r}).then(r => r.json())")
        assert rows[0] == case.json_first
        csv = reader.evaluate(f"fetch({case.csv_url!r}).then(r => r.text())")
        assert csv.splitlines()[0] == case.csv_header

        # The chosen plugin's output (datasette-pretty-json indents JSON cells) where the data has JSON.
        if case.database == "datasette-fixtures":
            reader.goto(gallery.url + "datasette-fixtures/facetable")
            assert '[\n    "tag1",\n    "tag2"\n]' in reader.locator("td.col-tags pre").first.inner_text()

        # The publisher's metadata: a canned query.
        if case.canned_query[0]:
            reader.goto(gallery.url + case.canned_query[0])
            assert case.canned_query[1] in reader.inner_text("table.rows-and-columns")

        # Later navigations download nothing new: every file came with the first visit.
        assert hits.since(first_visit) == [], hits.since(first_visit)

        # The browser stops an idle Service Worker; the next request still gets a correct page.
        stop_service_worker(reader)
        reader.goto(gallery.url + case.deep_link)
        assert case.deep_text in reader.inner_text("h1")
        # While a stopped worker starts, Chromium races the navigation itself to the network
        # (its ServiceWorkerAutoPreload feature) and drops that answer when the worker responds.
        # Nothing else may be fetched: the restarted worker boots from Cache Storage.
        assert set(hits.since(first_visit)) <= {"/" + case.deep_link.split("?")[0]}, hits.since(first_visit)

        # A deep link pasted into a new tab, and into a fresh browser profile.
        tab = page.context.new_page()
        tab.goto(gallery.url + case.deep_link)
        assert case.deep_text in tab.inner_text("h1")
        fresh_context = browser.new_context()
        try:
            fresh = fresh_context.new_page()
            fresh.goto(gallery.url + case.deep_link)
            fresh.wait_for_selector(f"h1:has-text('{case.deep_text}')", timeout=120_000)
        finally:
            fresh_context.close()
    finally:
        request_started.disconnect(hits)


def test_a_taken_down_gallery_stops_being_served(page: Any, live_gallery_server: Any, celery_worker: Any, shared_data: Path) -> None:
    build_url = publish_through_the_form(page, live_gallery_server.url, shared_data / "chinook.sqlite", "Takedown")
    page.wait_for_selector("#outcome :text('waiting for a moderator')", timeout=180_000)
    build_id = build_url.rstrip("/").rsplit("/", 1)[1]
    gallery = Gallery.objects.get(builds__id=build_id)
    moderation.approve(gallery, build=build_id)
    reader = page.context.new_page()
    reader.goto(gallery.url + "chinook/Album")
    reader.wait_for_selector("table.rows-and-columns", timeout=120_000)

    moderation.take_down(gallery, "test")
    # The next navigation may still be answered by the installed worker; its update check
    # fetches the kill switch, which wipes the caches and reloads the page.
    reader.goto(gallery.url + "chinook/Album")
    wait_until_taken_down(reader, 30_000)
    assert reader.evaluate("caches.keys()") == []


def test_the_form_offers_only_plugins_verified_with_the_chosen_datasette(page: Any, live_gallery_server: Any) -> None:
    from builder.catalog import DATASETTE_VERSIONS, load_catalog

    page.goto(f"{live_gallery_server.url}/publish/")
    for version in DATASETTE_VERSIONS:
        page.select_option("select[name=datasette_version]", version)
        for plugin in load_catalog().values():
            box = page.locator(f"input[name=plugins][value={plugin.name}]")
            assert box.is_enabled() is plugin.offered_with(version), (plugin.name, version)
