"""The app origin's strict CSP in Chromium: every main page works and reports no violation.

A script added to every app-origin document before its own scripts records each
``securitypolicyviolation`` event; console errors of app-origin pages are collected too.
The pages are used as people use them (the publish form's upload script, the build page's
polling, the embed panel, logging in, the admin's moderation queue), since a blocked script
shows as a page that does nothing rather than as an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery.models import Build, BuildState, Gallery, new_build_id
from tests.plugins.users import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Runs first in every document; records violations in app-origin documents only (not galleries).
WATCH = """
if (location.origin === %r) {
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
  });
}
"""


class Watched:
    """A browser context whose app-origin pages report CSP violations and console errors."""

    def __init__(self, browser: Any, app_url: str) -> None:
        self.app_url = app_url
        self.context = browser.new_context()
        self.context.set_default_timeout(30_000)
        self.context.add_init_script(WATCH % app_url)
        self.console_errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def _console(self, message: Any) -> None:
        # A 4xx answer is logged as an error too ("Failed to load resource"): the publish form's
        # refused upload, a missing favicon. Those are not what this test is about.
        if message.text.startswith("Failed to load resource"):
            return
        if message.type == "error" and message.location.get("url", "").startswith(self.app_url):
            self.console_errors.append(f"{message.location.get('url')}: {message.text}")

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.app_url + path)
        assert response is not None and response.ok, (path, response and response.status)
        return response

    def assert_clean(self, where: str) -> None:
        """No violation in the current page and no console error so far."""
        self.page.wait_for_timeout(200)  # violation events are dispatched asynchronously
        violations = self.page.evaluate("window.__violations")
        assert violations == [], (where, violations)
        assert self.console_errors == [], (where, self.console_errors)

    def log_in(self, email: str) -> None:
        self.goto("/accounts/login/")
        self.page.fill("input[name=login]", email)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("form button[type=submit]")
        self.page.wait_for_load_state()


@pytest.fixture
def watched(browser: Any, live_gallery_server: Any) -> Iterator[Any]:
    """``watched() -> Watched``: new watched contexts, closed after the test."""
    contexts: list[Watched] = []

    def make() -> Watched:
        contexts.append(Watched(browser, live_gallery_server.url))
        return contexts[-1]

    yield make
    for context in contexts:
        context.context.close()


def test_the_main_app_pages_work_under_the_nonce_policy_without_a_violation(
    watched: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path,
    publisher: Any, moderator: Any,
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="Chinook under CSP")
    Gallery.objects.filter(pk=gallery.pk).update(owner=publisher)
    running = Build.objects.create(id=new_build_id(), gallery=gallery, state=BuildState.BUNDLING, source_bytes=1)

    reader = watched()
    page = reader.page
    reader.goto("/")
    card = page.locator(f"a[href='/g/{gallery.id}/'] img")  # a share card, from the gallery's origin
    card.wait_for()
    # Loaded or refused, the image is complete in the end; on a busy machine that is not at once.
    page.wait_for_function("(img) => img.complete", arg=card.element_handle(), timeout=30_000)
    assert page.evaluate("(img) => img.naturalWidth > 0", card.element_handle()), "the share card did not load"
    reader.assert_clean("home")

    # The publish form's script uploads with XMLHttpRequest and shows the server's errors.
    reader.goto("/publish/")
    with page.expect_response(lambda r: r.request.method == "POST" and r.request.resource_type == "xhr"):
        page.click("#publish-button")
    page.wait_for_selector("#errors-file li")
    assert page.url == reader.app_url + "/publish/"
    reader.assert_clean("publish")

    # The build page polls its status.
    with page.expect_response(lambda r: r.url.endswith(f"/builds/{running.id}/status.json")):
        reader.goto(running.get_absolute_url())
    reader.assert_clean("build page")

    # The gallery page's embed panel asks for a new snippet and previews the gallery in a frame.
    reader.goto(f"/g/{gallery.id}/")
    page.locator("#embed-preview").scroll_into_view_if_needed()
    with page.expect_response(lambda r: "/embed.json?" in r.url):
        page.fill("#embed-height", "420")
    page.wait_for_function("document.getElementById('embed-snippet').value.includes('420')")
    frame = page.wait_for_selector("#embed-preview").content_frame()
    frame.wait_for_load_state()
    assert frame.url.startswith(gallery.url.rstrip("/"))
    assert page.evaluate("document.getElementById('embed-preview').style.height") == "420px"
    reader.assert_clean("gallery page")

    reader.goto("/accounts/signup/")
    reader.assert_clean("sign up")
    reader.goto("/accounts/login/")
    reader.assert_clean("log in")
    reader.log_in(publisher.email)
    assert page.url.endswith("/mine/"), page.url
    page.wait_for_selector(f"section[data-gallery='{gallery.id}']")
    reader.assert_clean("my galleries")
    reader.goto(f"/mine/{gallery.id}/edit/")
    page.select_option("select[name=datasette_version]", index=0)  # the plugin-sync script runs
    reader.assert_clean("edit settings")

    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    staff = watched()
    staff.goto("/admin/login/")
    staff.assert_clean("admin login")
    staff.page.fill("#id_username", moderator.username)
    staff.page.fill("#id_password", PASSWORD)
    staff.page.click("input[type=submit]")
    staff.goto("/admin/gallery/submission/")
    staff.page.locator("#result_list tbody tr", has_text="Chinook under CSP").wait_for()
    staff.assert_clean("moderation queue")
    staff.goto(f"/admin/gallery/gallery/{gallery.pk}/change/")
    staff.page.wait_for_selector("#moderation")
    staff.assert_clean("a gallery in the admin")
    staff.goto(f"/admin/gallery/build/{gallery.live_build_id}/change/")
    log = staff.page.wait_for_selector("pre.build-log")
    assert staff.page.evaluate("(pre) => getComputedStyle(pre).whiteSpace", log) == "pre-wrap"  # admin.css
    staff.assert_clean("a build in the admin")


def test_an_injected_inline_script_or_style_runs_only_with_the_pages_nonce(watched: Any) -> None:
    reader = watched()
    reader.goto("/publish/")
    outcome = reader.page.evaluate(
        """() => {
          const inject = (code, nonce) => {
            const script = document.createElement("script");
            if (nonce) script.nonce = nonce;
            script.textContent = code;
            document.head.append(script);
          };
          inject("window.__withoutNonce = true");
          inject("window.__withNonce = true", document.querySelector("script[nonce]").nonce);
          const box = document.createElement("p");
          box.setAttribute("style", "color: rgb(255, 0, 0)");
          document.body.append(box);
          return {
            withoutNonce: window.__withoutNonce === true,
            withNonce: window.__withNonce === true,
            styled: getComputedStyle(box).color === "rgb(255, 0, 0)",
          };
        }"""
    )
    assert outcome == {"withoutNonce": False, "withNonce": True, "styled": False}
    reader.page.wait_for_timeout(200)
    violations = reader.page.evaluate("window.__violations")
    assert any(re.match(r"script-src-elem blocked inline", v) for v in violations), violations
    assert any(re.match(r"style-src-attr blocked inline", v) for v in violations), violations
