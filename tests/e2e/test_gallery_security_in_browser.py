"""Gallery origins locked down, seen from Chromium: the policy, the database's type, Datasette's limits, integrity.

Every test here reuses the session's build of ``plugins.db`` with Datasette 0.65.5 and no
plugins (``prebuilt_bundle``; the same build the plugin checks' control gallery uses, where
it is served with ``lasting_gallery``). The database carries what these checks need
(``plugin_data.make_plugin_database``): the view ``runaway``, a recursive CTE that never
ends; the view ``place_names``, over a full-text table; and a table whose name, column and
value are HTML and script. The Service Worker mode tests that only read share one browser
context (``warm_tab``), so Datasette boots there once; the others (worker mode, a tampered
store, the database file) get a fresh context each.

Content-Security-Policy violations are read from the console: Chromium reports each one
there ("... violates the following Content Security Policy directive"), from the page and
from every frame in it, which covers worker mode's page frames.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from builder.csp import gallery_policy
from tests.support.plugin_data import DATABASE, HOSTILE_COLUMN, HOSTILE_TABLE, HOSTILE_VALUE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Milliseconds the first page may take (download, Pyodide, Datasette, reload); later pages are quick.
BOOT_MS = 120_000
PAGE_MS = 30_000
APP_FRAME = "iframe.glasshouse-page"
#: Home, database, table, row and SQL pages of the gallery.
PAGES = [
    "/",
    f"/{DATABASE}",
    f"/{DATABASE}/notes",
    f"/{DATABASE}/notes/1",
    f"/{DATABASE}?sql=select+title,+n+from+notes",
]
CSP_MARK = "Content Security Policy"


class Tab:
    """A browser tab on a gallery that records console messages, CSP violations among them."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base.rstrip("/")
        self.console: list[str] = []
        page.on("console", self._record)

    def _record(self, message: Any) -> None:
        self.console.append(f"[{message.type}] {message.text}")

    def stop_recording(self) -> None:
        """Stop recording the page's console (a page kept for later tests gets a new ``Tab`` there)."""
        self.page.remove_listener("console", self._record)

    @property
    def violations(self) -> list[str]:
        return [line for line in self.console if CSP_MARK in line]


def control_bundle(prebuilt_bundle: Callable[..., Any], plugin_database: Path) -> Any:
    """The shared build this module uses: ``plugins.db``, Datasette 0.65.5, no plugins."""
    return prebuilt_bundle(plugin_database, (), "0.65.5")


@pytest.fixture
def control_gallery(published_gallery: Callable[..., Any], plugin_database: Path, live_gallery_server: Any) -> Any:
    """A fresh published gallery (own origin) of the control build."""
    return published_gallery(plugin_database, (), datasette_version="0.65.5")


@pytest.fixture
def tab(browser: Any, control_gallery: Any, live_gallery_server: Any) -> Iterator[Tab]:
    context = browser.new_context()
    context.set_default_timeout(PAGE_MS)
    try:
        yield Tab(context.new_page(), live_gallery_server.gallery_url(control_gallery.pk))
    finally:
        context.close()


@pytest.fixture(scope="module")
def service_worker_context(browser: Any) -> Iterator[Any]:
    """A browser context kept for the module's Service Worker mode tests that only read the gallery.

    Its Service Worker boots Datasette once, in the first of them; the others find it booted
    (none of them is about the first boot). Chromium stops a Service Worker idle for 30 s, and a
    stopped one boots again on the next navigation (within ``BOOT_MS``, as a cold visit), so these
    tests come first in the module, one after another. Closed after the module.
    """
    context = browser.new_context()
    context.set_default_timeout(PAGE_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def warm_tab(
    service_worker_context: Any, lasting_gallery: Callable[..., Any], plugin_database: Path, live_gallery_server: Any
) -> Iterator[Tab]:
    """A ``Tab`` in ``service_worker_context`` on the control build, at the same origin in every test.

    ``lasting_gallery`` publishes the control build under one gallery id for the whole session, so
    the context's Service Worker (booted by an earlier test, or by this one within ``BOOT_MS``) serves
    it. The console is recorded from the start of this test only.
    """
    gallery = lasting_gallery(plugin_database, (), "0.65.5")
    page = service_worker_context.pages[0] if service_worker_context.pages else service_worker_context.new_page()
    tab = Tab(page, live_gallery_server.gallery_url(gallery.pk))
    try:
        yield tab
    finally:
        tab.stop_recording()


def open_in_service_worker_mode(tab: Tab, path: str, timeout: int = PAGE_MS) -> None:
    tab.page.goto(tab.base + path, timeout=timeout)
    tab.page.wait_for_selector("footer", timeout=timeout)
    assert tab.page.evaluate("Boolean(navigator.serviceWorker.controller)"), "answered by the Service Worker"


def blocked_fetch(context: Any, url: str) -> str:
    """Fetch ``url`` (another origin) from page script with ``no-cors``; return the error, or "" if it loaded.

    Without a policy this succeeds (an opaque answer needs no CORS), so a refusal is the policy's.
    """
    return context.evaluate(
        "async (url) => { try { await fetch(url, {mode: 'no-cors'}); return ''; } catch (e) { return String(e); } }",
        url,
    )


def test_service_worker_pages_run_under_the_policy_which_refuses_other_origins(
    warm_tab: Tab, live_gallery_server: Any
) -> None:
    open_in_service_worker_mode(warm_tab, PAGES[0], timeout=BOOT_MS)
    for path in PAGES:
        open_in_service_worker_mode(warm_tab, path)
    # The pages' own scripts ran: the SQL editor on the query page.
    warm_tab.page.wait_for_selector(".CodeMirror")
    assert not warm_tab.violations, "\n".join(warm_tab.console)
    # The Service Worker's answers carry the build's headers (a gallery without plugins: the base policy).
    headers = warm_tab.page.evaluate("fetch(location.href).then((r) => Object.fromEntries(r.headers))")
    assert headers["content-security-policy"] == gallery_policy(()), headers
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer", headers

    error = blocked_fetch(warm_tab.page, f"{live_gallery_server.url}/healthz")
    assert error.startswith("TypeError"), error
    assert any("/healthz" in line for line in warm_tab.violations), warm_tab.console


def test_a_runaway_view_ends_with_datasettes_time_limit_and_the_tab_stays_responsive(warm_tab: Tab) -> None:
    open_in_service_worker_mode(warm_tab, "/", timeout=BOOT_MS)
    warm_tab.page.evaluate(
        "() => { const t0 = performance.now(); window.__runaway = fetch('/plugins/runaway.json')"
        ".then(async (r) => ({status: r.status, body: await r.text(), ms: performance.now() - t0})); }"
    )
    # While the Service Worker runs the query, the tab's own script answers: the query has not ended yet.
    assert (
        warm_tab.page.evaluate(
            "() => Promise.race([window.__runaway.then(() => 'query ended first'), Promise.resolve('tab answered')])"
        )
        == "tab answered"
    )
    result = warm_tab.page.evaluate("window.__runaway")
    assert result["status"] == 400, result
    assert "SQL query took too long" in result["body"], result
    assert result["ms"] < 10_000, result
    # The HTML page says so too, and the gallery keeps answering.
    warm_tab.page.goto(warm_tab.base + f"/{DATABASE}/runaway")
    warm_tab.page.wait_for_selector("text=SQL query took too long")
    open_in_service_worker_mode(warm_tab, f"/{DATABASE}/notes")


def test_datasette_runs_with_its_limits_and_an_untrusted_schema(warm_tab: Tab) -> None:
    open_in_service_worker_mode(warm_tab, "/", timeout=BOOT_MS)
    settings = warm_tab.page.evaluate("fetch('/-/settings.json').then((r) => r.json())")
    assert settings["sql_time_limit_ms"] == 1000 and settings["max_returned_rows"] == 1000, settings
    # trusted_schema=OFF: a view may not use a virtual table (nor a function not marked innocuous).
    view = warm_tab.page.evaluate(
        "fetch('/plugins/place_names.json').then(async (r) => ({status: r.status, body: await r.text()}))"
    )
    assert view["status"] == 400 and "unsafe use of virtual table" in view["body"], view
    # The same table read directly is fine.
    direct = warm_tab.page.evaluate("fetch('/plugins/places_fts.json?_shape=array').then((r) => r.json())")
    assert sorted(row["name"] for row in direct) == ["London", "Paris"]


@pytest.mark.parametrize("mode", ["service-worker", "worker"])
def test_html_and_script_in_names_and_values_render_as_text_and_never_run(
    request: pytest.FixtureRequest, mode: str, transactional_db: None
) -> None:
    # Service Worker mode reads the booted gallery of the module's other read-only tests; worker mode
    # boots in a fresh context. (``transactional_db`` is named so that pytest-django, which runs
    # tests by database use, keeps this test in its place, right after the others of ``warm_tab``.)
    tab: Tab = request.getfixturevalue("warm_tab" if mode == "service-worker" else "tab")
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.page.on("dialog", on_dialog)
    request.addfinalizer(lambda: tab.page.remove_listener("dialog", on_dialog))
    sql = f"/{DATABASE}?sql={quote_plus(f'select * from [{HOSTILE_TABLE}]')}"
    if mode == "worker":
        tab.page.goto(tab.base + f"/{DATABASE}?_glasshouse_mode=worker")
        view = tab.page.frame_locator(APP_FRAME).last
        view.locator("footer").wait_for(timeout=BOOT_MS)
    else:
        open_in_service_worker_mode(tab, f"/{DATABASE}", timeout=BOOT_MS)
        view = tab.page
    # The database page lists the table by its name; its link opens the table, then the row.
    view.get_by_role("link", name=HOSTILE_TABLE, exact=True).click()
    view.locator(f'th:has-text("{HOSTILE_COLUMN}")').first.wait_for()
    assert view.get_by_text(HOSTILE_VALUE, exact=True).first.is_visible()
    view.locator("td.type-pk a").first.click()
    view.get_by_text(HOSTILE_VALUE, exact=True).first.wait_for()
    assert view.locator("h1").first.inner_text().startswith(HOSTILE_TABLE)
    if mode == "worker":
        tab.page.evaluate("(url) => window.__glasshouseShell.navigate(url)", tab.base + sql)
        view = tab.page.frame_locator(APP_FRAME).last
    else:
        tab.page.goto(tab.base + sql)
    view.get_by_text(HOSTILE_VALUE, exact=True).first.wait_for()
    # Nothing of it became markup: no such image, script, SVG or bold text was made, no dialog opened.
    for selector in ("img[src='x']", "svg[onload]", "b:text-is('bold?')"):
        assert view.locator(selector).count() == 0, selector
    assert not dialogs, dialogs


def test_worker_mode_pages_run_under_the_policy_which_refuses_other_origins(tab: Tab, live_gallery_server: Any) -> None:
    tab.page.goto(tab.base + PAGES[0] + "?_glasshouse_mode=worker")
    tab.page.wait_for_selector("html[data-glasshouse-mode=worker]")
    frame = tab.page.frame_locator(APP_FRAME).last
    frame.locator("footer").wait_for(timeout=BOOT_MS)
    for path in PAGES[1:]:
        # Navigations inside the shell: one Worker, one boot.
        tab.page.evaluate("(url) => window.__glasshouseShell.navigate(url)", tab.base + path)
        tab.page.wait_for_url(tab.base + path)
        tab.page.frame_locator(APP_FRAME).last.locator("footer").wait_for()
    frame = tab.page.frame_locator(APP_FRAME).last
    frame.locator(".CodeMirror").wait_for()
    assert tab.page.evaluate("navigator.serviceWorker.controller") is None
    assert not tab.violations, "\n".join(tab.console)

    error = frame.locator("body").evaluate(
        "async (body, url) => { try { await fetch(url, {mode: 'no-cors'}); return ''; } catch (e) { return String(e); } }",
        f"{live_gallery_server.url}/healthz",
    )
    assert error.startswith("TypeError"), error
    assert any("/healthz" in line for line in tab.violations), tab.console


def test_the_database_file_cannot_be_registered_as_a_service_worker_nor_served_as_a_page(
    tab: Tab, control_gallery: Any
) -> None:
    database_url = f"/_build/{control_gallery.live_build_id}/data/{DATABASE}.db"
    tab.page.goto(tab.base + "/")  # the bootstrap page: script on the gallery's origin
    refusal = tab.page.evaluate(
        "async (url) => { try { await navigator.serviceWorker.register(url); return 'registered'; }"
        " catch (e) { return e.name + ': ' + e.message; } }",
        database_url,
    )
    assert refusal.startswith("SecurityError") and "MIME type ('application/vnd.sqlite3')" in refusal, refusal
    answer = tab.page.evaluate(
        "(url) => fetch(url).then((r) => [r.status, r.headers.get('content-type'), r.headers.get('x-content-type-options')])",
        database_url,
    )
    assert answer == [200, "application/vnd.sqlite3", "nosniff"]


@pytest.fixture
def tampered_store(
    prebuilt_bundle: Callable[..., Any], plugin_database: Path, shared_store: Path, tmp_path: Path, settings: Any
) -> Path:
    """A throwaway copy of the shared store (hard links) in which the build's Datasette wheel is changed.

    The copy is this test's store (``LOCAL_STORAGE_ROOT``); the shared store and every other
    test's gallery keep their pristine files: the changed wheel is a new file, not a write
    through the link.
    """
    bundle = control_bundle(prebuilt_bundle, plugin_database)
    copy = tmp_path / "store"
    shutil.copytree(shared_store, copy, copy_function=os.link)
    entry = next(f for f in bundle.manifest["files"] if f["key"].startswith("wheels/") and "/datasette-0" in f["key"])
    wheel = copy / entry["key"]
    data = wheel.read_bytes()
    wheel.unlink()
    wheel.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit changed
    return copy


@pytest.mark.parametrize("mode", ["service-worker", "worker"])
def test_a_tampered_wheel_is_refused_in_the_browser_with_a_clear_error(
    tab: Tab, control_gallery: Any, tampered_store: Path, settings: Any, mode: str
) -> None:
    settings.LOCAL_STORAGE_ROOT = tampered_store
    query = "?_glasshouse_mode=worker" if mode == "worker" else ""
    tab.page.goto(tab.base + "/" + query)
    # The loading page's problem box, or (once worker mode's shell shows a page) the runtime's error page.
    shown = ""
    deadline = time.monotonic() + 60
    while "integrity check" not in shown and time.monotonic() < deadline:
        tab.page.wait_for_timeout(250)
        problem = tab.page.locator("#problem")
        frames = tab.page.frame_locator(APP_FRAME).last.locator("body")
        if problem.is_visible():
            shown = problem.inner_text()
        elif tab.page.locator(APP_FRAME).count():
            shown = frames.inner_text()
    assert "This gallery's files failed an integrity check" in shown, (shown, tab.console)
    assert "/_wheels/" in shown and "datasette-0.65.5" in shown, shown
    assert "Reload the page to try again" in shown and "tell the publisher" in shown, shown
