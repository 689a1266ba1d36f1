"""The embed panel on a real gallery page, and ``/embed.js`` sizing iframes in an article, in Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.tables import describe_tables
from gallery.models import Build

pytestmark = pytest.mark.e2e


@pytest.fixture
def clipboard_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context that may read and write the clipboard."""
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_choosing_a_table_and_fit_content_updates_the_snippet_preview_and_clipboard(
    clipboard_page: Any, live_gallery_server: Any, published_gallery: Any, shared_data: Path, settings: Any
) -> None:
    settings.APP_URL = live_gallery_server.url
    database = shared_data / "chinook.sqlite"
    gallery = published_gallery(database)
    Build.objects.filter(pk=gallery.live_build_id).update(tables=describe_tables(database))
    page = clipboard_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_gallery_server.url}/g/{gallery.id}/")
    snippet = page.locator("#embed-snippet")
    assert f'src="{gallery.url}-/embed/"' in snippet.input_value()
    assert "embed.js" not in snippet.input_value()

    page.select_option("#embed-table", "Album")
    page.check('input[name="sizing"][value="fit"]')
    album_embed = f"{gallery.url}-/embed/{gallery.database_name}/Album"
    page.wait_for_function(
        "([url]) => { const v = document.getElementById('embed-snippet').value;"
        " return v.includes(url) && v.includes('/embed.js'); }",
        arg=[album_embed],
    )
    value = snippet.input_value()
    assert f'<iframe src="{album_embed}" title="{gallery.title}"' in value
    assert f'<script async src="{live_gallery_server.url}/embed.js"></script>' in value
    page.wait_for_function(
        "([url]) => document.getElementById('embed-preview').src === url", arg=[album_embed]
    )
    # The preview is lazy: it loads once near the viewport, and then the embed URL.
    page.locator("#embed-preview").scroll_into_view_if_needed()
    deadline = time.monotonic() + 10
    while album_embed not in requested and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert album_embed in requested, "the preview iframe did not load the embed URL"

    # Pressed from the keyboard: the preview below resizes itself as the gallery boots, and a
    # mouse click aimed at the button can land in the preview when the page shifts under it.
    page.locator("button[data-copy='embed-snippet']").press("Enter")
    page.wait_for_function("() => document.querySelector('#embed .copy-status').textContent !== ''")
    status = page.locator("#embed .copy-status").inner_text()
    if status == "Copied.":
        page.focus("#embed-snippet")  # reading the clipboard needs the page focused, not the preview
        assert page.evaluate("() => navigator.clipboard.readText()") == value
    else:  # no clipboard access: the whole snippet is selected for the reader to copy
        assert status == "Selected: press Ctrl+C (⌘C) to copy."
        selected = "() => { const box = document.getElementById('embed-snippet');" \
            " return box.value.slice(box.selectionStart, box.selectionEnd); }"
        assert page.evaluate(selected) == value


ARTICLE = """<!doctype html><title>An article</title>
<p>Two embeds and an impostor.</p>
<iframe id="one" src="{one}" data-glasshouse-embed height="100" style="border:0;height:100px"></iframe>
<iframe id="two" src="{two}" data-glasshouse-embed height="100" style="border:0;height:100px"></iframe>
<iframe id="impostor" src="{impostor}" data-glasshouse-embed height="100" style="border:0;height:100px"></iframe>
<script async src="{app}/embed.js"></script>
<script async src="{app}/embed.js"></script>
"""

#: What an embedded page does: post its height to the parent (the contract in gallery/embed.py),
#: then some messages embed.js must ignore.
FRAME = """<!doctype html><script>
const post = (message) => parent.postMessage(message, "*");
// Posted a few times: embed.js loads async and may not listen yet at first.
let times = 0;
const timer = setInterval(() => {{
  post({{type: "glasshouse:resize", height: 1.5}});
  post({{type: "glasshouse:resize", height: 99999999}});
  post({{type: "something-else", height: 50}});
  post("glasshouse:resize");
  post({{type: "glasshouse:resize", height: {height}}});
  if (++times === 20) clearInterval(timer);
}}, 250);
</script>"""


def test_embed_js_sizes_each_gallery_iframe_and_ignores_other_origins(page: Any, live_gallery_server: Any) -> None:
    port = live_gallery_server.port
    one = f"http://abc123def456.localhost:{port}/-/embed/one"
    two = f"http://abc123def456--0123456789abcdef.localhost:{port}/-/embed/two"
    impostor = f"http://impostor.localhost:{port}/-/embed/x"
    article = f"http://article.localhost:{port}/article"
    frames = {one: 321, two: 654, impostor: 777}

    # The article and the three framed pages are test pages; embed.js comes from the live app origin.
    def answer(route: Any) -> None:
        url = route.request.url
        if url == article:
            body = ARTICLE.format(one=one, two=two, impostor=impostor, app=live_gallery_server.url)
        else:
            body = FRAME.format(height=frames[url])
        route.fulfill(status=200, content_type="text/html", body=body)

    for url in (article, *frames):
        page.route(url, answer)
    # A test page is no loopback host to Chromium, which then blocks its requests to loopback
    # (Local Network Access): Playwright fetches the real /embed.js from the live server for it.
    page.route(f"{live_gallery_server.url}/embed.js", lambda route: route.fulfill(response=route.fetch()))
    page.goto(article)
    page.wait_for_function("() => document.getElementById('one').offsetHeight === 321")
    page.wait_for_function("() => document.getElementById('two').offsetHeight === 654")
    page.wait_for_timeout(500)
    assert page.evaluate("() => document.getElementById('impostor').offsetHeight") == 100
    assert page.evaluate("() => document.getElementById('one').getAttribute('height')") == "321"
