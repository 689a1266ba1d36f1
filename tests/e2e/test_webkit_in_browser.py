"""Galleries in WebKitGTK (Safari's engine family), driven by Selenium: what a Safari reader gets.

The Chromium tests (``test_worker_mode_in_browser.py``, ``test_embed_in_browser.py``,
``test_removal_in_browser.py``) cover each feature in depth; these check the same reader-facing
results in WebKit, on the session's shared Chinook build (``published_gallery``). Every WebKit
session starts with empty storage, so each test pays one cold boot (30-50 s on a loaded 2-core
machine): a reader's visits therefore run as one story per mode, in one browser.

Scripts given to ``execute_script`` must not call ``eval``: the gallery's CSP has no ``'unsafe-eval'``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import (
    JavascriptException,
    NoSuchFrameException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gallery.embed import embed_snippet, parse_gallery_url
from gallery.services import moderation
from tests.support.service_worker import TAB_STATE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Seconds a cold boot may take (WebKitGTK under Xvfb on a loaded 2-core machine took up to 50 s).
BOOT_S = 120
#: Seconds for anything after the boot.
STEP_S = 30
APP_FRAME = "iframe.glasshouse-page"
EMBED = "iframe[data-glasshouse-embed]"
SQL = "select count(*) as n from Track where GenreId = 1"
#: The text of the first element matching ``arguments[0]`` in the page the reader sees: worker
#: mode's page frame when there is one, else the document itself ("" while there is none).
TEXT_OF = """const frame = document.querySelector('iframe.glasshouse-page');
const doc = frame ? frame.contentDocument : document;
const element = doc && doc.querySelector(arguments[0]);
return element ? element.textContent.trim() : '';"""


def until(driver: Any, script: str, *args: Any, timeout: float = STEP_S) -> Any:
    """Run ``script`` (a function body, as ``execute_script`` takes it) until it returns something
    truthy; return that. A script that fails while a page is being replaced counts as "not yet".

    Fails the test after ``timeout`` seconds, quoting the script and what the tab then showed.
    """
    ignored = (JavascriptException, StaleElementReferenceException, NoSuchFrameException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25, ignored_exceptions=ignored).until(
            lambda d: d.execute_script(script, *args)
        )
    except TimeoutException:
        pytest.fail(f"WebKit: still false after {timeout} s: {script} {args}\n{tab_state(driver)}")


def tab_state(driver: Any) -> str:
    """What the tab holds (``tests.support.service_worker.TAB_STATE``), for a failure's message."""
    try:
        state = driver.execute_script(f"return ({TAB_STATE})()")
    except WebDriverException as exc:
        return f"(the tab's state could not be read: {exc.msg})"
    return f"The tab shows {state['url']} (registrations: {state['registrations']}, controlled: {state['controlled']}):\n{state['text']}"


def text_of(driver: Any, selector: str, starts_with: str, timeout: float = STEP_S) -> str:
    """Wait until the first ``selector`` of the page the reader sees (``TEXT_OF``) starts with
    ``starts_with``; return its text. Fails with the last text seen after ``timeout`` seconds."""
    seen = [""]

    def check(d: Any) -> str | bool:
        seen[0] = d.execute_script(TEXT_OF, selector)
        return seen[0] if seen[0].startswith(starts_with) else False

    ignored = (JavascriptException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25, ignored_exceptions=ignored).until(check)
    except TimeoutException:
        pytest.fail(f"WebKit: {selector} never started with {starts_with!r} (last seen {seen[0]!r})")


def enter_app_frame(driver: Any) -> None:
    """Switch into worker mode's page frame as it is now (the shell renders each page into a fresh one)."""
    driver.switch_to.default_content()
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, APP_FRAME))


def click_link(driver: Any, href: str) -> None:
    """Add a link to ``href`` to the current document and click it, as a reader would."""
    driver.execute_script(
        "const a = document.createElement('a'); a.href = arguments[0]; a.id = 'webkit-test-link';"
        " a.textContent = arguments[0]; document.body.prepend(a);",
        href,
    )
    driver.find_element(By.ID, "webkit-test-link").click()


def submit_query(driver: Any, sql: str) -> None:
    """Type ``sql`` into Datasette's SQL editor on the current document and submit the form."""
    until(driver, "return Boolean(document.querySelector('.CodeMirror'))")
    driver.execute_script("document.querySelector('.CodeMirror').CodeMirror.setValue(arguments[0])", sql)
    driver.find_element(By.CSS_SELECTOR, "form.sql input[type=submit]").click()


def test_a_gallery_runs_in_service_worker_mode_opens_offline_and_ends_with_the_kill_switch(
    webkit: Any, published_gallery: Any, stoppable_gallery_server: Any, shared_data: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite")
    base = stoppable_gallery_server.gallery_url(gallery.pk)
    webkit.get(base + "chinook/Album")
    assert text_of(webkit, "h3", "347 rows", timeout=BOOT_S)
    assert webkit.execute_script("return Boolean(navigator.serviceWorker && navigator.serviceWorker.controller)")
    assert webkit.title.startswith("chinook: Album")
    # Page scripts run (Datasette's table.js adds the column cog menus).
    until(webkit, "return Boolean(document.querySelector('th .dropdown-menu-icon'))")
    webkit.find_element(By.CSS_SELECTOR, "th .dropdown-menu-icon").click()
    menu = webkit.find_element(By.CSS_SELECTOR, ".dropdown-menu")
    WebDriverWait(webkit, STEP_S).until(lambda d: menu.is_displayed())
    assert "Sort" in menu.text

    # A SQL query through the form; the page's own fetch reaches the Service Worker too.
    webkit.get(base + "chinook")
    submit_query(webkit, SQL)
    assert text_of(webkit, "td.col-n", "1297")
    assert "sql=select" in webkit.current_url
    rows = webkit.execute_script("return fetch('/chinook/Album.json?_shape=array&_size=2').then(r => r.json())")
    assert rows[0] == {"AlbumId": 1, "Title": "For Those About To Rock We Salute You", "ArtistId": 1}

    # A deep link opened in a new tab.
    webkit.switch_to.new_window("tab")
    webkit.get(base + "chinook/Track/1")
    assert "Track: 1" in text_of(webkit, "h1", "Track")

    # Offline: nothing listens on the gallery's port, and its pages and queries still open.
    stoppable_gallery_server.stop()
    probe = "return fetch('/sw.js', {cache: 'no-store'}).then(r => 'answered ' + r.status, e => e.name)"
    assert webkit.execute_script(probe) == "TypeError", "the server is out of reach"
    webkit.get(base + "chinook/Artist/1")
    assert text_of(webkit, "h1", "Artist")
    webkit.get(base + "chinook?sql=select+count(*)+as+n+from+Album")
    assert text_of(webkit, "td.col-n", "347")

    # Back online, after a takedown: the next visit installs the kill switch, which empties the
    # gallery's caches, unregisters its worker and reloads the page into the server's notice.
    stoppable_gallery_server.start()
    moderation.take_down(gallery, "Reported for publishing personal data; upheld.")
    webkit.get(base + "chinook/Album")
    until(webkit, "return document.body.innerText.includes('This gallery was taken down.')")
    assert webkit.execute_script("return caches.keys()") == []
    assert webkit.execute_script("return navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    assert not webkit.find_elements(By.CSS_SELECTOR, "table.rows-and-columns")


def test_a_gallery_runs_in_worker_mode_from_a_deep_link_and_its_open_tab_keeps_working_offline(
    webkit: Any, published_gallery: Any, stoppable_gallery_server: Any, shared_data: Path
) -> None:
    # Built to be read lazily (test_lazy_database_in_browser.py's build): WebKit lacks JSPI, so the
    # runtime downloads the whole database, checked, and the gallery works as any other.
    gallery = published_gallery(shared_data / "chinook.sqlite", lazy_database_min_bytes=0)
    base = stoppable_gallery_server.gallery_url(gallery.pk)
    # The cold visit is a deep link to a table page (a second cold boot for a deep link in a new
    # tab would double the test's time: test_worker_mode_in_browser.py does that in Chromium).
    webkit.get(base + "chinook/Album?_glasshouse_mode=worker")
    until(webkit, "return document.documentElement.dataset.glasshouseMode === 'worker'")
    assert "Running without a Service Worker" in webkit.find_element(By.ID, "mode").text
    assert text_of(webkit, "h3", "347 rows", timeout=BOOT_S)
    assert webkit.execute_script("return document.documentElement.dataset.glasshouseDatabase") == "whole"
    # The loading page showed the Worker's download progress before the first page replaced it.
    assert " MB of " in webkit.find_element(By.ID, "detail").get_attribute("textContent")
    assert webkit.execute_script("return navigator.serviceWorker ? navigator.serviceWorker.controller : null") is None
    assert webkit.title.startswith("chinook: Album"), "the shell shows the page's title"

    # A SQL query through the form, on the database page a reader's link leads to (a GET the
    # shell answers through the Worker).
    enter_app_frame(webkit)
    webkit.find_element(By.CSS_SELECTOR, ".crumbs a[href='/chinook']").click()
    webkit.switch_to.default_content()
    assert text_of(webkit, "h1", "chinook")
    assert webkit.current_url == base + "chinook"
    enter_app_frame(webkit)
    submit_query(webkit, SQL)
    webkit.switch_to.default_content()
    assert text_of(webkit, "td.col-n", "1297")
    assert "sql=select" in webkit.current_url

    # Offline, the open tab keeps working: its Worker answers the next page.
    stoppable_gallery_server.stop()
    enter_app_frame(webkit)
    click_link(webkit, "/chinook/Artist/1")
    webkit.switch_to.default_content()
    assert text_of(webkit, "h1", "Artist")
    assert webkit.current_url == base + "chinook/Artist/1"


def test_an_embedded_gallery_runs_in_a_cross_site_article_sizes_itself_and_opens_the_full_view(
    webkit: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path,
    article_server: Callable[[str], str], settings: Any,
) -> None:  # fmt: skip
    # WebKit partitions a cross-site frame's storage by the article's site, as Safari does: the
    # embed runs in Service Worker mode (its own worker and caches for this article's site).
    settings.APP_URL = live_gallery_server.url
    gallery = published_gallery(shared_data / "chinook.sqlite")
    base = live_gallery_server.gallery_url(gallery.pk)
    target = parse_gallery_url(base + "chinook/Album")
    webkit.get(article_server(embed_snippet(target, title="Chinook albums", height=400, fit_content=False)))
    webkit.switch_to.frame(webkit.find_element(By.CSS_SELECTOR, EMBED))
    assert text_of(webkit, "h3", "347 rows", timeout=BOOT_S)
    assert text_of(webkit, "td.col-Title", "For Those About To Rock We Salute You")
    assert not webkit.find_element(By.CSS_SELECTOR, ".not-footer > header").is_displayed(), "header hidden in an embed"
    assert webkit.execute_script("return Boolean(navigator.serviceWorker && navigator.serviceWorker.controller)")

    # The gallery posts its height from its own origin; without /embed.js nothing applies it.
    webkit.switch_to.default_content()
    table_height = until(webkit, "return window.resizes.length > 0 && window.resizes.at(-1)")
    assert table_height["origin"] == base.rstrip("/")
    assert table_height["height"] > 1000, table_height
    frame_height = f"return document.querySelector('{EMBED}').getBoundingClientRect().height"
    assert webkit.execute_script(frame_height) == 400
    # The snippet's script arrives late: it asks the embed for its height and sizes the iframe.
    webkit.execute_script(
        "const s = document.createElement('script'); s.src = arguments[0]; document.body.append(s);",
        f"{live_gallery_server.url}/embed.js",
    )
    until(webkit, f"return Math.abs({frame_height.removeprefix('return ')} - {table_height['height']}) <= 1")
    webkit.switch_to.frame(webkit.find_element(By.CSS_SELECTOR, EMBED))
    webkit.find_element(By.CSS_SELECTOR, "td.col-ArtistId a").click()
    assert text_of(webkit, "h1", "Artist")
    embed_url = webkit.execute_script("return location.href")
    assert "/-/embed/chinook/Artist/1" in embed_url, "navigation stays in embed mode"
    webkit.switch_to.default_content()
    until(webkit, f"return window.resizes.at(-1).height < {table_height['height']}")
    until(webkit, f"return Math.abs({frame_height.removeprefix('return ')} - window.resizes.at(-1).height) <= 1")

    # "Open full view" opens the gallery's own URL of the view in a new tab, without an opener.
    webkit.switch_to.frame(webkit.find_element(By.CSS_SELECTOR, EMBED))
    before = set(webkit.window_handles)
    webkit.find_element(By.CSS_SELECTOR, "a[data-glasshouse-full-view]").click()
    WebDriverWait(webkit, STEP_S).until(lambda d: set(d.window_handles) - before)
    webkit.switch_to.window((set(webkit.window_handles) - before).pop())
    WebDriverWait(webkit, STEP_S).until(lambda d: d.current_url == base + "chinook/Artist/1")
    assert webkit.execute_script("return window.opener") is None
