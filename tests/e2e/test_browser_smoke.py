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
