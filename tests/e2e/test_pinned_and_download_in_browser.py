"""Pinned versions and the self-host download, in Chromium.

- A gallery published twice: its pinned URL keeps showing the first build's data while
  its own URL shows the second, and a takedown stops both (kill switch on each origin).
- A reader with the first build open is told when the second one's worker takes over, and the
  reload the notice offers shows the second build.
- The self-host zip the build stored (its size on the gallery page), downloaded over HTTP,
  unzipped and served by ``python3 -m http.server``: Datasette runs from it with no request
  to anywhere but that server.
"""

from __future__ import annotations

import http.client
import re
import shutil
import sqlite3
import subprocess
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.template.defaultfilters import filesizeformat

from gallery.models import Build, BuildReview, Gallery
from gallery.services import moderation
from tests.support.service_worker import wait_until_taken_down

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Rows of the small Album table of the second build (the first build is Chinook: 347 albums).
SMALL_ALBUMS = [(1, "First pressing", 1), (2, "Second pressing", 1), (3, "Third pressing", 2)]


@pytest.fixture(scope="module")
def small_chinook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chinook-shaped ``chinook.sqlite`` (so its URLs are ``/chinook/Album``) with only three albums."""
    path = tmp_path_factory.mktemp("small-chinook") / "chinook.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE Album (AlbumId INTEGER PRIMARY KEY, Title TEXT NOT NULL, ArtistId INTEGER)")
    connection.executemany("INSERT INTO Album VALUES (?, ?, ?)", SMALL_ALBUMS)
    connection.commit()
    connection.close()
    return path


def open_table(page: Any, url: str) -> str:
    """Open ``url`` (a table page of a gallery) and return its row count line, e.g. ``"347 rows"``."""
    page.goto(url)
    page.wait_for_selector("table.rows-and-columns", timeout=120_000)
    return page.inner_text("h3").strip()


def test_a_new_version_waiting_for_review_is_not_served_on_its_pinned_origin_until_a_moderator_approves_it(
    page: Any, live_gallery_server: Any, published_gallery: Any, shared_data: Path, small_chinook: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="A version waiting for review")
    first = gallery.live_build_id
    waiting = published_gallery(small_chinook, gallery=gallery).live_build_id
    # As an untrusted publisher's new version is: ready with every file stored, not approved; the
    # first build stays live.
    Build.objects.filter(pk=waiting).update(review=BuildReview.PENDING, approval="")
    Gallery.objects.filter(pk=gallery.pk).update(live_build=first)

    response = page.goto(gallery.pinned_url(waiting) + "chinook/Album")
    assert response is not None and response.status == 404
    assert "No such version" in page.inner_text("h1")
    assert page.locator("table.rows-and-columns").count() == 0
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
    live = page.context.new_page()
    assert open_table(live, gallery.url + "chinook/Album").startswith("347 rows")

    moderation.approve(gallery, build=waiting)
    assert open_table(page, gallery.pinned_url(waiting) + "chinook/Album").startswith("3 rows")


def test_a_reader_of_the_old_version_is_told_of_the_newer_one_and_its_reload_serves_it(
    page: Any, live_gallery_server: Any, published_gallery: Any, shared_data: Path, small_chinook: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="A newer version")
    assert open_table(page, gallery.url + "chinook/Album").startswith("347 rows")
    assert page.locator("#glasshouse-newer-version").count() == 0
    gallery = published_gallery(small_chinook, gallery=gallery)
    # Another tab's navigation makes the browser check /sw.js: the new build's worker installs,
    # downloads its bundle and takes over every open page of the gallery, the first tab's too,
    # whose table came from the old build.
    other = page.context.new_page()
    other.goto(gallery.url + "chinook")
    notice = page.locator("#glasshouse-newer-version")
    notice.wait_for(timeout=60_000)
    assert notice.inner_text().startswith("A newer version of this gallery is available.")
    assert page.inner_text("h3").strip().startswith("347 rows")
    notice.locator("a").click()
    page.wait_for_selector("table.rows-and-columns >> text=Third pressing", timeout=120_000)
    assert page.inner_text("h3").strip().startswith("3 rows")
    assert page.locator("#glasshouse-newer-version").count() == 0


def test_a_pinned_version_keeps_its_data_while_the_gallery_follows_the_live_build_until_a_takedown(
    page: Any, live_gallery_server: Any, published_gallery: Any, shared_data: Path, small_chinook: Path
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="Pinned versions")
    first = gallery.live_build_id
    gallery = published_gallery(small_chinook, gallery=gallery)
    second = gallery.live_build_id
    assert first != second
    pinned_url = gallery.pinned_url(first)
    assert urlsplit(pinned_url).hostname == f"{gallery.id}--{first}.localhost"

    pinned = page
    live = page.context.new_page()
    assert open_table(pinned, pinned_url + "chinook/Album").startswith("347 rows")
    assert open_table(live, gallery.url + "chinook/Album").startswith("3 rows")
    assert "Third pressing" in live.inner_text("table.rows-and-columns")
    # Both stay what they are once each origin's Service Worker answers.
    assert open_table(pinned, pinned_url + "chinook/Album?_sort=AlbumId").startswith("347 rows")
    assert open_table(live, gallery.url + "chinook/Album?_sort=AlbumId").startswith("3 rows")

    moderation.take_down(gallery, "test")
    for reader, origin in ((pinned, pinned_url), (live, gallery.url)):
        # The installed worker may answer this navigation; its update check fetches the
        # kill switch, which wipes the caches and reloads the page. Chromium may defer that check
        # while the old worker is busy (it saves its memory snapshot a few seconds after the first
        # pages): 60 s, as four test processes on two cores have made it take over 30.
        reader.goto(origin + "chinook/Album")
        wait_until_taken_down(reader, 60_000)
        assert reader.evaluate("caches.keys()") == []
        assert reader.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0


def download_bundle(server: Any, gallery: Any, target: Path) -> tuple[http.client.HTTPResponse, Path]:
    """GET ``/_download/<live build>.zip`` from the gallery origin with a plain HTTP client; return the response and file."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request(
            "GET",
            f"/_download/{gallery.live_build_id}.zip",
            headers={"Host": f"{gallery.id}.localhost:{server.port}"},
        )
        response = connection.getresponse()
        with target.open("wb") as fh:
            shutil.copyfileobj(response, fh)
        return response, target
    finally:
        connection.close()


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``(folder, origin)``: ``python3 -m http.server`` serving an empty folder on 127.0.0.1, as the README says.

    Port 0 lets the server pick a free port, read from its "Serving HTTP on" line.
    """
    site = tmp_path / "site"
    site.mkdir()
    python3 = shutil.which("python3")
    assert python3 is not None, "python3 is not on PATH"
    process = subprocess.Popen(
        [python3, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=site,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r"port (\d+)", first_line)
        assert match, f"python3 -m http.server did not start: {first_line!r}"
        # Keep reading its output so the pipe never fills up.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield site, f"http://localhost:{match[1]}"
    finally:
        process.terminate()
        process.wait(10)


def test_the_self_host_download_runs_in_chromium_from_a_plain_static_server(
    browser: Any,
    live_gallery_server: Any,
    published_gallery: Any,
    shared_data: Path,
    static_server: tuple[Path, str],
    tmp_path: Path,
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite")
    response, archive_path = download_bundle(live_gallery_server, gallery, tmp_path / "bundle.zip")
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/zip"
    assert response.getheader("Content-Disposition") == (
        f'attachment; filename="chinook-{gallery.live_build_id}.zip"'
    )
    # The zip the build stored, whose size the build recorded and the gallery page shows.
    build = Build.objects.get(pk=gallery.live_build_id)
    assert build.download_bytes == archive_path.stat().st_size
    with urllib.request.urlopen(f"{live_gallery_server.url}/g/{gallery.id}/", timeout=30) as answer:
        assert f"Download the whole gallery (.zip, {filesizeformat(build.download_bytes)})" in answer.read().decode()
    site, origin = static_server
    with zipfile.ZipFile(archive_path) as archive:
        assert archive.testzip() is None
        archive.extractall(site)
    assert "python3 -m http.server 8000" in (site / "README.txt").read_text()

    context = browser.new_context()
    context.set_default_timeout(30_000)
    requests: list[Any] = []
    context.on("request", lambda request: requests.append(request))
    try:
        reader = context.new_page()
        reader.goto(origin + "/")
        # The loading page installs the Service Worker and reloads; then Datasette answers "/".
        reader.wait_for_function("() => document.body.innerText.includes('Powered by Datasette')", timeout=120_000)
        assert open_table(reader, origin + "/chinook/Album").startswith("347 rows")
        reader.goto(origin + "/chinook?sql=select+count(*)+as+n+from+Track+where+GenreId+%3D+1")
        assert reader.inner_text("td.col-n").strip() == "1297"
    finally:
        context.close()

    urls = [request.url for request in requests if not request.url.startswith(("data:", "blob:"))]
    assert [url for url in urls if not url.startswith(origin + "/")] == []
    # The Service Worker's own downloads were recorded too, so the check above covers them.
    assert any(request.service_worker is not None for request in requests)
    assert any(url.endswith("/pyodide.asm.wasm") for url in urls)
