"""Gallery answers tell the browser to drop the content origin's cookies (``Clear-Site-Data``).

Galleries set no cookies, so any cookie there came from a gallery's own script; the bootstrap
page and ``/sw.js`` (kill switch included) clear them, the immutable stores do not bother.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from builder.pyodide import PYODIDE_VERSION
from gallery.content.preview import preview_url
from gallery.models import Gallery

pytestmark = pytest.mark.django_db

RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}"  # as the ``bundle`` fixture writes it
WHEEL_SHA = "ab" * 32


@pytest.mark.parametrize("path", ["/", "/chinook/album?_sort=title", "/sw.js", "/robots.txt", "/no/such/page"])
def test_the_bootstrap_page_and_the_service_worker_clear_the_origins_cookies(content_client, bundle, path):
    response = content_client.get(path)
    assert response.status_code == 200
    assert response["Clear-Site-Data"] == '"cookies"'


def test_a_revalidated_bootstrap_page_clears_them_too(content_client, bundle):
    etag = content_client.get("/chinook")["ETag"]
    response = content_client.get("/chinook", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response["Clear-Site-Data"] == '"cookies"'


def test_the_kill_switch_worker_clears_them(content_client, bundle, gallery):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.TAKEN_DOWN)
    worker = content_client.get("/sw.js")
    assert worker.status_code == 200 and b"unregister" in worker.content
    assert worker["Clear-Site-Data"] == '"cookies"'
    assert content_client.get("/")["Clear-Site-Data"] == '"cookies"'


def test_pinned_and_preview_origins_clear_them(client, bundle, build, gallery):
    for host in (f"{gallery.id}--{build.id}.localhost:8000", urlsplit(preview_url(build)).netloc):
        for path in ("/", "/sw.js"):
            response = client.get(path, HTTP_HOST=host)
            assert response.status_code == 200, (host, path)
            assert response["Clear-Site-Data"] == '"cookies"', (host, path)


@pytest.mark.parametrize(
    "path",
    [
        f"/_runtime/{RUNTIME.removeprefix('runtime/')}/pyodide.asm.wasm",
        f"/_wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl",
        "/_build/{build}/data/chinook.db",
    ],
)
def test_the_stores_fetched_by_the_dozen_do_not_clear_them(content_client, bundle, build, path):
    response = content_client.get(path.format(build=build.id))
    assert response.status_code == 200
    assert "Clear-Site-Data" not in response


def test_the_app_origin_never_clears_its_own_cookies(client, db):
    assert "Clear-Site-Data" not in client.get("/")
