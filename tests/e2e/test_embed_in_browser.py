"""A gallery embedded in a third-party article, in Chromium: Service Worker mode where the browser
partitions storage (as current browsers do), worker mode where it gives the frame no storage.

The article is a tiny page on ``http://127.0.0.1:<port>`` (cross-site to ``*.localhost``) served
by a stub server on loopback (``article_server``, ``tests.plugins.servers``), holding the snippet
the embed panel and oEmbed give (``gallery.embed.embed_snippet``) and an inline listener that only
records ``glasshouse:resize`` messages. The snippet's ``/embed.js`` from the app origin is added to the article after the
gallery has drawn itself, as a slow script would arrive: it must still size the iframe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gallery.embed import embed_snippet, parse_gallery_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 120_000
EMBED = "iframe[data-glasshouse-embed]"


@pytest.mark.parametrize(
    ("browser_fixture", "mode"),
    [("partitioned_browser", "service-worker"), ("browser", "worker")],
    ids=["storage-partitioned-service-worker-mode", "playwright-defaults-worker-mode"],
)
def test_an_embedded_gallery_runs_sizes_itself_and_opens_the_full_view(
    request: pytest.FixtureRequest, browser_fixture: str, mode: str, published_gallery: Any,
    live_gallery_server: Any, shared_data: Path, article_server: Callable[[str], str], settings: Any,
) -> None:  # fmt: skip
    settings.APP_URL = live_gallery_server.url
    gallery = published_gallery(shared_data / "chinook.sqlite")
    base = live_gallery_server.gallery_url(gallery.pk)
    # The snippet as the embed panel and oEmbed give it for a pasted gallery URL, fitted to content.
    target = parse_gallery_url(base + "chinook/Album")
    iframe = embed_snippet(target, title="Chinook albums", height=400, fit_content=False)
    snippet = embed_snippet(target, title="Chinook albums", height=400, fit_content=True)
    assert snippet == f'{iframe}\n<script async src="{live_gallery_server.url}/embed.js"></script>'
    context = request.getfixturevalue(browser_fixture).new_context()
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(article_server(iframe))
        embed = page.frame_locator(EMBED)
        # In worker mode the shell renders each page into a frame of its own inside the embed.
        view = embed.frame_locator("iframe.glasshouse-page") if mode == "worker" else embed
        heading = view.locator("h3").first
        heading.wait_for(timeout=BOOT_MS)
        assert heading.inner_text().strip().startswith("347 rows")
        assert view.locator("td.col-Title").first.inner_text() == "For Those About To Rock We Salute You"
        assert not view.locator(".not-footer > header").is_visible(), "Datasette's header is hidden in an embed"

        gallery_frame = next(f for f in page.frames if f.parent_frame == page.main_frame)
        controlled = gallery_frame.evaluate("() => Boolean(navigator.serviceWorker && navigator.serviceWorker.controller)")
        assert controlled is (mode == "service-worker")
        if mode == "worker":
            assert gallery_frame.evaluate("document.documentElement.dataset.glasshouseMode") == "worker"

        # The gallery posts its height from its own origin; without /embed.js nothing applies it.
        page.wait_for_function("() => window.resizes.length > 0")
        table_height = page.evaluate("window.resizes.at(-1)")
        assert table_height["origin"] == base.rstrip("/")
        assert table_height["height"] > 1000, table_height
        assert page.locator(EMBED).bounding_box()["height"] == 400
        # The snippet's script arrives late: it asks the embed for its height and sizes the iframe.
        page.evaluate(
            "(src) => { const s = document.createElement('script'); s.src = src; document.body.append(s); }",
            f"{live_gallery_server.url}/embed.js",
        )
        page.wait_for_function(
            f"() => Math.abs(document.querySelector('{EMBED}').getBoundingClientRect().height - {table_height['height']}) <= 1"
        )
        view.locator("td.col-ArtistId a").first.click()
        view.locator("h1:has-text('Artist')").wait_for()
        assert "/-/embed/chinook/Artist/1" in gallery_frame.evaluate("location.href"), "navigation stays in embed mode"
        page.wait_for_function(f"() => window.resizes.at(-1).height < {table_height['height']}")
        assert abs(page.locator(EMBED).bounding_box()["height"] - page.evaluate("window.resizes.at(-1).height")) <= 1

        # "Open full view" opens the normal gallery URL of the view in a new tab.
        with context.expect_page() as opened:
            view.locator("a[data-glasshouse-full-view]").click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.url == base + "chinook/Artist/1"
        assert tab.evaluate("window.opener") is None
    finally:
        context.close()
