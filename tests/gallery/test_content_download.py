"""Self-host download: /_download/<build-id>.zip on a gallery's live and pinned origins.

The zip is the one the build stored (``builder.download``; the fixtures' ``make_bundle`` stores
it as a build does), served as any stored file, rate-limited per client address. A build made
before builds stored their zip gets it made once by a worker task.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from builder.download import download_key
from builder.pyodide import PYODIDE_VERSION
from gallery.models import Build, BuildReview, BuildState, Gallery
from gallery.ratelimits import too_many_downloads_message
from gallery.services import queue
from gallery.storage import get_storage
from tests.support.loopback import free_port

pytestmark = pytest.mark.django_db

#: The real sender, kept before the ``asked`` fixture replaces it.
real_send_download = queue.send_download

LICENSED = {
    "license": "CC BY 4.0",
    "license_url": "https://creativecommons.org/licenses/by/4.0/",
    "source": "Chinook sample database",
    "source_url": "https://github.com/lerocha/chinook-database",
}


def download(client, host: str, build_id: str, **headers: str):
    response = client.get(f"/_download/{build_id}.zip", HTTP_HOST=host, **headers)
    return response, (b"".join(response.streaming_content) if response.streaming else response.content)


def live_host(gallery: Gallery) -> str:
    return f"{gallery.id}.localhost:8000"


def pinned_host(gallery: Gallery, build_id: str) -> str:
    return f"{gallery.id}--{build_id}.localhost:8000"


@pytest.fixture
def licensed_bundle(build: Build, make_bundle) -> dict[str, bytes]:
    return make_bundle(build, metadata=LICENSED)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Build ids whose zip the content origin asked a worker for (``gallery.services.queue.send_download``)."""
    sent: list[str] = []
    monkeypatch.setattr(queue, "send_download", sent.append)
    return sent


def test_the_download_is_the_stored_zip_laid_out_as_a_static_site_with_a_readme(
    client, gallery, build, licensed_bundle
):
    response, data = download(client, live_host(gallery), build.id)
    assert response.status_code == 200
    assert data == licensed_bundle[download_key(build.id)]  # the stored zip, as it is
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    assert response["Content-Length"] == str(len(data)) == str(build.download_bytes)
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response.cookies

    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = json.loads(licensed_bundle[f"builds/{build.id}/manifest.json"])
    expected = {entry["url"].removeprefix("/"): licensed_bundle[entry["key"]] for entry in manifest["files"]}
    assert sorted(expected) == [
        f"_build/{build.id}/data/chinook.db",
        f"_build/{build.id}/pyodide-lock.json",
        f"_runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm",
        f"_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs",
        f"_runtime/pyodide-{PYODIDE_VERSION}/python_stdlib.zip",
        f"_wheels/{'ab' * 32}/datasette-0.65.5-py3-none-any.whl",
        "index.html",
        "sw.js",
    ]
    assert archive.namelist() == [*expected, "README.txt"]
    for name, content in expected.items():
        assert archive.getinfo(name).file_size == len(content)
        assert archive.read(name) == content
    # Text, wasm, SQLite and the zips of stored entries deflated; what is compressed already stored as it is.
    assert archive.getinfo("index.html").compress_type == zipfile.ZIP_DEFLATED
    assert archive.getinfo(f"_build/{build.id}/data/chinook.db").compress_type == zipfile.ZIP_DEFLATED
    assert archive.getinfo(f"_runtime/pyodide-{PYODIDE_VERSION}/python_stdlib.zip").compress_type == zipfile.ZIP_DEFLATED
    assert archive.getinfo(f"_wheels/{'ab' * 32}/datasette-0.65.5-py3-none-any.whl").compress_type == zipfile.ZIP_STORED
    assert b"private" not in data  # the private upload is never part of it

    readme = archive.read("README.txt").decode()
    assert "python3 -m http.server 8000" in readme
    assert "http://localhost:8000/" in readme
    assert f"Pyodide {PYODIDE_VERSION}" in readme
    assert "Datasette 0.65.5 with its dependencies; plugins: datasette-pretty-json" in readme
    assert f"_build/{build.id}/pyodide-lock.json" in readme
    assert f"_build/{build.id}/data/chinook.db  the database (" in readme
    assert "Licence: CC BY 4.0 <https://creativecommons.org/licenses/by/4.0/>" in readme
    assert "Source: Chinook sample database <https://github.com/lerocha/chinook-database>" in readme


def test_a_readme_without_licence_metadata_says_nothing_about_it(client, gallery, build, bundle):
    _, data = download(client, live_host(gallery), build.id)
    readme = zipfile.ZipFile(io.BytesIO(data)).read("README.txt").decode()
    assert "Licence" not in readme
    assert "python3 -m http.server 8000" in readme


def test_the_zip_is_served_only_as_an_attachment_under_download(client, gallery, build, bundle):
    """Not at its storage path under /_build/, where it would be immutable, inline and not rate-limited."""
    response = client.get(f"/_build/{build.id}/download.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 404


def test_a_pinned_origin_offers_its_own_build_and_no_other(client, gallery, build, bundle, make_build, make_bundle):
    older = make_build(review=BuildReview.APPROVED)
    make_bundle(older)
    response, data = download(client, pinned_host(gallery, older.id), older.id)
    assert response.status_code == 200
    assert f"_build/{older.id}/data/chinook.db" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    other, _ = download(client, pinned_host(gallery, older.id), build.id)
    assert other.status_code == 404
    # The gallery's own origin offers every ready build of it.
    from_live, _ = download(client, live_host(gallery), older.id)
    assert from_live.status_code == 200


@pytest.mark.parametrize(
    "case", ["failed build", "another galleries build", "build waiting for review", "unknown build", "not a zip name"]
)
def test_only_an_approved_ready_build_of_the_gallery_can_be_downloaded(
    client, gallery, other_gallery, build, bundle, make_build, make_bundle, case
):
    if case in ("failed build", "another galleries build", "build waiting for review"):
        # Its files are all there, its zip too: only the build's state, review or gallery stands in the way.
        refused = {
            "failed build": lambda: make_build(BuildState.FAILED, review=BuildReview.APPROVED),
            "another galleries build": lambda: make_build(of=other_gallery, review=BuildReview.APPROVED),
            "build waiting for review": lambda: make_build(),
        }[case]()
        make_bundle(refused)
        path = f"/_download/{refused.id}.zip"
    elif case == "unknown build":
        path = "/_download/0123456789abcdef.zip"
    else:
        path = f"/_download/{build.id}.tar"
    response = client.get(path, HTTP_HOST=live_host(gallery))
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("state", "status", "text"),
    [
        (Gallery.ModerationState.PENDING, 404, b"not published"),
        (Gallery.ModerationState.REJECTED, 404, b"not published"),
        (Gallery.ModerationState.TAKEN_DOWN, 410, b"taken down"),
    ],
)
def test_a_gallery_that_is_not_public_offers_no_download(client, gallery, build, bundle, state, status, text):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=state)
    for host in (live_host(gallery), pinned_host(gallery, build.id)):
        response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=host)
        assert response.status_code == status
        assert text in response.content


def test_a_stored_zip_that_went_missing_answers_404(client, gallery, build, bundle, storage):
    (storage.root / download_key(build.id)).unlink()
    response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 404


def test_a_head_request_gets_the_download_headers_and_no_body(client, gallery, build, bundle):
    response = client.head(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    assert response["Content-Length"] == str(build.download_bytes)
    assert response.content == b""


def test_a_storage_outage_answers_503(client, gallery, build, bundle, storage_outage):
    response = client.get(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery))
    assert response.status_code == 503
    assert b"Storage is unavailable, try again shortly" in response.content


def test_the_download_streams_from_s3_as_from_a_local_folder(client, gallery, build, bundle, s3_bucket):
    store = get_storage()
    for key, content in bundle.items():
        store.put_bytes(key, content)
    assert store.local_path(download_key(build.id)) is None
    response, data = download(client, live_host(gallery), build.id)
    assert response.status_code == 200
    assert response.streaming
    assert data == bundle[download_key(build.id)]


# --- Rate limit per client address -------------------------------------------------------------


def test_downloads_over_the_limit_from_one_address_get_a_429_page_that_says_when_to_try_again(
    client, gallery, build, bundle, settings
):
    settings.DOWNLOAD_RATE_LIMIT = "2/h"
    host = live_host(gallery)
    # A HEAD (a download manager's check) costs no bytes and counts for nothing.
    assert client.head(f"/_download/{build.id}.zip", HTTP_HOST=host).status_code == 200
    for _ in range(2):
        assert download(client, host, build.id)[0].status_code == 200
    # The pinned origin of the same gallery shares the address's count.
    refused, _ = download(client, pinned_host(gallery, build.id), build.id)
    assert refused.status_code == 429
    assert refused["Content-Type"] == "text/html; charset=utf-8"
    page = refused.content.decode()
    assert "Too many downloads from your address: the limit is 2 per hour." in page
    assert re.search(r"Try again in \d+ minutes?\. The gallery itself keeps working", page)
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "Content-Disposition" not in refused
    assert not refused.cookies and "Set-Cookie" not in refused
    assert refused["X-Content-Type-Options"] == "nosniff"
    # Another address is counted on its own.
    other, _ = download(client, host, build.id, REMOTE_ADDR="203.0.113.7")
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("seconds_left", "wait"), [(30, "in 1 minute."), (60, "in 1 minute."), (61, "in 2 minutes."), (-1, "later.")]
)
def test_the_refusal_says_how_long_to_wait(settings, seconds_left: int, wait: str):
    settings.DOWNLOAD_RATE_LIMIT = "30/h"
    assert too_many_downloads_message(seconds_left).startswith(
        f"Too many downloads from your address: the limit is 30 per hour. Try again {wait}"
    )


def test_an_ipv6_client_is_counted_by_its_64_prefix(client, gallery, build, bundle, settings):
    settings.DOWNLOAD_RATE_LIMIT = "1/h"
    host = live_host(gallery)
    assert download(client, host, build.id, REMOTE_ADDR="2001:db8:1:2::10")[0].status_code == 200
    assert download(client, host, build.id, REMOTE_ADDR="2001:db8:1:2::99")[0].status_code == 429
    assert download(client, host, build.id, REMOTE_ADDR="2001:db8:1:3::10")[0].status_code == 200


# --- Builds made before builds stored their zip ------------------------------------------------


def test_an_older_build_gets_its_zip_made_once_by_a_worker_never_while_a_reader_waits(
    client, gallery, build, make_bundle, storage, asked
):
    from worker_shell.tasks import store_download

    bundle = make_bundle(build, metadata=LICENSED, download=False)
    assert build.download_bytes is None and not storage.exists(download_key(build.id))
    host = live_host(gallery)
    for _ in range(3):
        response, _ = download(client, host, build.id)
        assert response.status_code == 503
        assert b"its zip is being made now, once. Try again in a minute or two." in response.content
        assert response["Retry-After"] == "60"
        assert "Content-Disposition" not in response
        assert not storage.exists(download_key(build.id)), "nothing is zipped in the web process"
    assert asked == [build.id], "one worker task, whatever the number of requests"

    # The worker's task (worker_shell.tasks.store_download), run here with the same store.
    size = store_download(build.id)
    build.refresh_from_db()
    assert build.download_bytes == size == storage.size(download_key(build.id))
    assert store_download(build.id) == size  # a second delivery changes nothing

    response, data = download(client, host, build.id)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="chinook-{build.id}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(bundle[f"builds/{build.id}/manifest.json"])
    assert archive.namelist() == [*(entry["url"].removeprefix("/") for entry in manifest["files"]), "README.txt"]
    assert "Licence: CC BY 4.0" in archive.read("README.txt").decode()
    assert asked == [build.id]


def test_a_build_whose_files_were_removed_while_its_zip_was_made_keeps_no_zip(
    gallery, build, make_bundle, storage, monkeypatch
):
    """A takedown between the task's start and its end: the build's folder goes again, zip included."""
    from worker_shell import tasks

    make_bundle(build, download=False)
    real_store = tasks.store_bundle_zip

    def store_then_removed(*args, **kwargs):  # type: ignore[no-untyped-def]
        size = real_store(*args, **kwargs)
        Build.objects.filter(pk=build.pk).update(files_deleted=True)  # what services.removal.remove_build_files records
        return size

    monkeypatch.setattr(tasks, "store_bundle_zip", store_then_removed)
    assert tasks.store_download(build.id) is None
    assert not storage.exists(download_key(build.id))
    build.refresh_from_db()
    assert build.download_bytes is None


def test_an_older_build_while_the_queue_is_down_asks_again_on_the_next_request(
    client, gallery, build, make_bundle, settings, monkeypatch, asked
):
    make_bundle(build, download=False)
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: a broker that is down
    monkeypatch.setattr(queue, "app", queue.make_app())
    monkeypatch.setattr(queue, "send_download", real_send_download)
    response, _ = download(client, live_host(gallery), build.id)
    assert response.status_code == 503
    assert b"cannot be prepared right now. Try again later." in response.content
    monkeypatch.setattr(queue, "send_download", asked.append)  # the broker is back
    response, _ = download(client, live_host(gallery), build.id)
    assert b"being made now" in response.content
    assert asked == [build.id]

