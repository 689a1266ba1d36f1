"""App cookies never reach a gallery, and a gallery's own cookies do not last (Chromium).

On the development layout (app ``127.0.0.1``, galleries ``*.localhost``) no cookie of the app's
can reach a gallery, whatever its ``Domain``, so the first test would pass without host-only
cookies; the second puts app and galleries on one site (``*.glasshouse.test``), where a
``Domain`` attribute on the app's cookies would hand them to every gallery, and fails then.

The server records the ``Cookie`` header of every request it receives for a gallery origin
(``request_started`` hands over the WSGI environ), so requests made by the gallery's Service
Worker are seen as well as the page's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.signals import request_started

from tests.plugins.users import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 120_000


@pytest.fixture
def gallery_requests(live_gallery_server: Any) -> Iterator[list[tuple[str, str, str]]]:
    """``[(host, path, cookie header), ...]`` of every request the live server received for a gallery origin.

    A gallery origin is a host under ``settings.CONTENT_DOMAIN`` at the time of the request.
    """
    from django.conf import settings

    seen: list[tuple[str, str, str]] = []

    def record(sender: Any, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
        host = (environ or {}).get("HTTP_HOST", "")
        if host.rsplit(":", 1)[0].endswith("." + settings.CONTENT_DOMAIN):
            seen.append((host, environ.get("PATH_INFO", ""), environ.get("HTTP_COOKIE", "")))

    request_started.connect(record, dispatch_uid="appsec-gallery-requests")
    try:
        yield seen
    finally:
        request_started.disconnect(dispatch_uid="appsec-gallery-requests")


def test_app_cookies_never_reach_a_gallery_and_a_gallerys_own_cookie_is_cleared(
    page: Any,
    published_gallery: Any,
    live_gallery_server: Any,
    gallery_requests: list[tuple[str, str, str]],
    shared_data: Path,
    publisher: Any,
) -> None:
    app = live_gallery_server.url
    gallery = published_gallery(shared_data / "chinook.sqlite")

    # Log in on the app: its cookies are host-only (no leading dot), Lax, the session HttpOnly.
    page.goto(app + "/accounts/login/")
    page.fill("input[name=login]", publisher.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(app + "/mine/")
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert {"sessionid", "csrftoken"} <= set(cookies)
    for cookie in cookies.values():
        assert not cookie["domain"].startswith("."), cookie
        assert cookie["sameSite"] == "Lax", cookie
    assert cookies["sessionid"]["httpOnly"]

    # Open the gallery in the same browser: Datasette boots, and nothing of the app's comes along.
    page.goto(gallery.url + "chinook")
    page.wait_for_selector("a[href$='/Album']", timeout=BOOT_MS)
    assert page.evaluate("document.cookie") == ""
    assert gallery_requests, "the gallery's requests were not seen"
    assert {path for _host, path, _cookie in gallery_requests} >= {"/chinook", "/sw.js"}
    assert [request for request in gallery_requests if request[2]] == []

    # A gallery script sets a cookie on its origin; the next answer from the server clears it
    # (robots.txt here, which the worker passes to the network; the bootstrap page and /sw.js
    # carry the same Clear-Site-Data header).
    page.evaluate("document.cookie = 'bomb=' + 'x'.repeat(3000) + '; max-age=86400'")
    assert page.evaluate("document.cookie").startswith("bomb=")
    page.evaluate("fetch('/robots.txt').then((response) => response.text())")
    page.wait_for_function("document.cookie === ''", timeout=10_000)
    assert gallery_requests[-1][1] == "/robots.txt" and gallery_requests[-1][2].startswith("bomb=")

    # The app's session survived the gallery's Clear-Site-Data (another site's cookies).
    page.goto(app + "/mine/")
    assert page.url == app + "/mine/"
    assert page.locator("header a:text-is('My galleries')").is_visible()


#: App and galleries under one parent domain, as a misconfigured deployment would have them:
#: ``app.glasshouse.test`` and ``<id>.g.glasshouse.test``, one site (the settings refuse this at
#: start; the test sets them afterwards). Chromium resolves both to the live server.
SAME_SITE_APP = "app.glasshouse.test"
SAME_SITE_CONTENT = "g.glasshouse.test"


@pytest.fixture
def same_site_browser(chromium_path: str, playwright_driver: Any) -> Iterator[Any]:
    """A headless Chromium that resolves ``*.glasshouse.test`` to 127.0.0.1."""
    from tests.support.chromium import launch_args

    chromium = playwright_driver.chromium.launch(
        executable_path=chromium_path,
        headless=True,
        args=[*launch_args(), "--host-resolver-rules=MAP *.glasshouse.test 127.0.0.1"],
    )
    try:
        yield chromium
    finally:
        chromium.close()


def test_host_only_app_cookies_stay_off_galleries_even_on_one_site(
    same_site_browser: Any,
    published_gallery: Any,
    live_gallery_server: Any,
    gallery_requests: list[tuple[str, str, str]],
    settings: Any,
    shared_data: Path,
    publisher: Any,
) -> None:
    # Where host-only cookies matter most: were the app's cookies given Domain=glasshouse.test,
    # every gallery would receive them.
    port = live_gallery_server.port
    settings.CONTENT_DOMAIN = SAME_SITE_CONTENT
    settings.ALLOWED_HOSTS = [SAME_SITE_APP, f".{SAME_SITE_CONTENT}"]
    app = f"http://{SAME_SITE_APP}:{port}"
    gallery = published_gallery(shared_data / "chinook.sqlite")
    gallery_url = f"http://{gallery.id}.{SAME_SITE_CONTENT}:{port}/"

    context = same_site_browser.new_context()
    try:
        page = context.new_page()
        page.goto(app + "/accounts/login/")
        page.fill("input[name=login]", publisher.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(app + "/mine/")
        assert {cookie["name"] for cookie in context.cookies()} >= {"sessionid", "csrftoken"}

        page.goto(gallery_url + "chinook")  # the bootstrap page (no Service Worker on plain http here)
        assert page.evaluate("document.cookie") == ""
        assert context.cookies(gallery_url) == []
    finally:
        context.close()
    assert gallery_requests, "the gallery's requests were not seen"
    assert [request for request in gallery_requests if request[2]] == []
