"""Smoke test of the harness: Debian's Chromium reaches the live server as app and content origin."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_chromium_opens_the_app_origin(page: Any, live_gallery_server: Any) -> None:
    response = page.goto(f"{live_gallery_server.url}/healthz")

    assert response is not None and response.status == 200
    assert '"status": "ok"' in page.inner_text("body")


@pytest.mark.parametrize("label", ["anything", "abcdefghijkl"], ids=["not-an-id", "unknown-id"])
def test_chromium_reaches_a_content_origin_on_localhost(page: Any, live_gallery_server: Any, label: str) -> None:
    # No gallery has this label: the request still reaches the live server (through
    # Chromium's own *.localhost resolution), whose content origin answers 404.
    response = page.goto(live_gallery_server.gallery_url(label))

    assert response is not None and response.status == 404
    assert "No gallery" in page.inner_text("body")
    assert response.headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("fixture", ["browser", "partitioned_browser"])
def test_the_test_browsers_start_no_window_furniture(request: pytest.FixtureRequest, fixture: str) -> None:
    # tests.support.chromium.UNSHOWN_BROWSER_UI: no address-bar popup rendered per window. Chromium
    # 156 lists it as two "browser_ui" targets (chrome://omnibox-popup.top-chrome/) of every window.
    browser = request.getfixturevalue(fixture)
    context = browser.new_context()
    try:
        context.new_page().set_content("<p>A window</p>")
        session = browser.new_browser_cdp_session()
        targets = session.send("Target.getTargets")["targetInfos"]
        session.detach()
    finally:
        context.close()
    assert any(t["type"] == "page" and t["url"] == "about:blank" for t in targets), targets
    assert [t["url"] for t in targets if t["type"] == "browser_ui" or t["url"].startswith("chrome://")] == []
