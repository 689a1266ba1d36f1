"""CSV, TSV, JSON and Excel uploads in the web app: what the form and the services accept, store and pass on.

Converting them is the build's (tests/builder/test_tabular.py; a real worker in
tests/worker_shell/test_tabular_builds.py; the form in Chromium in tests/e2e/test_tabular_in_browser.py).
"""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery.models import Build, Gallery
from gallery.services import galleries, publishing, uploads
from gallery.views.builds import build_status_data
from worker_shell.tasks import build_request

PUBLISH = reverse("gallery:publish")
CSV = b"name,count\nheron,3\nswift,12\n"
pytestmark = pytest.mark.django_db


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "suffix"),
    [
        ("Bird Counts.csv", CSV, ".csv"),
        ("birds.TSV", b"name\tcount\nheron\t3\n", ".tsv"),
        ("birds.json", b'[{"name": "heron", "count": 3}]', ".json"),
        ("birds.jsonl", b'{"name": "heron"}\n{"name": "swift"}\n', ".jsonl"),
        ("birds.xlsx", _zip(), ".xlsx"),
    ],
)
def test_a_tabular_file_through_the_form_is_stored_for_the_build_to_convert(
    client, upload_data, storage, sent_builds, name, content, suffix
):
    response = client.post(
        PUBLISH, upload_data(file=SimpleUploadedFile(name, content), full_text_search="on", search_columns="name, ,name")
    )
    build = Build.objects.select_related("gallery").get()
    assert response.status_code == 302 and response["Location"] == build.get_absolute_url()
    assert build.source_key == f"uploads/{build.id}/source{suffix}"
    assert storage.open(build.source_key).read() == content
    gallery = build.gallery
    assert gallery.database_name == ("bird-counts" if name.startswith("Bird") else "birds")
    assert (gallery.full_text_search, gallery.search_columns) == (True, ["name"])
    # The build carries its own copy of the setting, which a moderator approves with it.
    assert (build.full_text_search, list(build.search_columns)) == (True, ["name"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("birds.xlsx", b"name,count\nheron,3\n", "not an Excel workbook"),
        ("birds.csv", b"SQLite format 3\x00" + b"\x00" * 200, "not CSV text (it holds binary data)"),
        ("birds.json", b'{"name": "heron"}', "JSON file must be an array"),
        ("birds.ndjson", b'["heron"]\n', "holds one object a line"),
        ("birds.xls", b"\xd0\xcf\x11\xe0", "upload a SQLite database"),
    ],
)
def test_a_file_that_is_plainly_not_its_format_is_refused_and_nothing_is_stored(
    client, upload_data, storage, sent_builds, name, content, message
):
    response = client.post(PUBLISH, upload_data(file=SimpleUploadedFile(name, content)))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Gallery.objects.exists() and not list(storage.keys("uploads/")) and sent_builds == []


def test_too_many_search_columns_are_refused_by_field(client, upload_data, storage):
    many = ",".join(f"c{i}" for i in range(uploads.MAX_SEARCH_COLUMNS + 1))
    response = client.post(
        PUBLISH, upload_data(file=SimpleUploadedFile("b.csv", CSV), search_columns=many), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["search_columns"] == [
        f"Name at most {uploads.MAX_SEARCH_COLUMNS} columns for full-text search, not {uploads.MAX_SEARCH_COLUMNS + 1}."
    ]
    assert not Gallery.objects.exists()


def _accept(filename: str, content: bytes, **kwargs) -> Build:
    return galleries.accept_upload(
        upload=SimpleUploadedFile(filename, content), filename=filename, title="Birds", plugins=[], by_operator=True,
        **kwargs,
    )  # fmt: skip


def test_the_worker_is_asked_to_convert_into_the_table_named_after_the_first_file(storage, sent_builds, tmp_path):
    build = _accept("birds.csv", CSV, full_text_search=True, search_columns=["name"])
    request = build_request(build, tmp_path)
    assert (request.source_format, request.table_name, request.database_name) == ("csv", "birds", "birds")
    assert request.database_path == tmp_path / "source.csv"
    assert (request.full_text_search, list(request.search_columns)) == (True, ["name"])


def test_a_database_upload_is_not_converted(storage, sent_builds, sqlite_bytes, tmp_path):
    request = build_request(_accept("chinook.db", sqlite_bytes), tmp_path)
    assert (request.source_format, request.table_name) == ("sqlite", "")
    assert request.database_path == tmp_path / "source.db"


def test_a_new_version_keeps_the_table_its_urls_use(storage, sent_builds, sqlite_bytes, tmp_path):
    # The first version was a database of one table, Album: /albums/Album stays the table's URL.
    first = _accept("albums.db", sqlite_bytes)
    Build.objects.filter(pk=first.pk).update(state="ready", tables=[{"name": "Album", "rows": 2, "columns": ["Title"]}])
    newer = galleries.upload_new_version(
        first.gallery, upload=SimpleUploadedFile("albums-2026.tsv", b"Title\nBlue\n"), filename="albums-2026.tsv",
        by=None,
    )  # fmt: skip
    assert newer.source_key.endswith("/source.tsv")
    request = build_request(newer, tmp_path)
    assert (request.source_format, request.table_name, request.database_name) == ("tsv", "Album", "albums")


def test_a_build_that_made_several_tables_leaves_the_next_one_named_after_the_database(storage, sent_builds):
    first = _accept("budget.xlsx", _zip())
    Build.objects.filter(pk=first.pk).update(
        state="ready", tables=[{"name": "Income", "rows": 2, "columns": []}, {"name": "Spending", "rows": 3, "columns": []}]
    )
    newer = galleries.upload_new_version(first.gallery, upload=SimpleUploadedFile("b.csv", CSV), filename="b.csv", by=None)
    assert publishing.table_name_for(newer) == "budget"


def test_the_build_page_says_what_was_made_to_those_who_may_see_the_log(storage, sent_builds, admin_client, client):
    build = _accept("birds.csv", CSV)
    Build.objects.filter(pk=build.pk).update(
        tables=[{"name": "birds", "rows": 2, "columns": ["name", "count"], "types": ["text", "integer"]},
                {"name": "older", "rows": 1, "columns": ["x"]}]  # a build from before types were recorded
    )  # fmt: skip
    build.refresh_from_db()
    assert build_status_data(build, with_log=True)["tables"] == [
        {"name": "birds", "rows": 2, "columns": [{"name": "name", "type": "text"}, {"name": "count", "type": "integer"}]},
        {"name": "older", "rows": 1, "columns": [{"name": "x", "type": ""}]},
    ]
    assert build_status_data(build, with_log=False)["tables"] is None
    page = admin_client.get(build.get_absolute_url()).content.decode()
    assert '<section id="made">' in page and 'count <span class="muted">(integer)</span>' in page
    assert '<section id="made" hidden>' in client.get(build.get_absolute_url()).content.decode()
