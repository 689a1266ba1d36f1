"""The publish form and view: what a publisher sees for each mistake, and what a good upload creates."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from builder.metadata import MAX_METADATA_DEPTH
from builder.storage import LocalStorage
from gallery.forms import PublishForm
from gallery.models import Build, BuildState, Gallery
from tests.support.hostile_metadata import PLUGIN, alias_bomb, deep_json

PUBLISH = reverse("gallery:publish")
JSON = {"HTTP_ACCEPT": "application/json"}

# Overrides are built per test: an uploaded file can be read only once.
BAD_UPLOADS = [
    pytest.param(
        lambda: {"file": SimpleUploadedFile("data.db", b"id,title\n1,Blue\n" * 4)},
        "file",
        "This is not a SQLite database",
        id="non-sqlite file",
    ),
    pytest.param(
        lambda: {"file": SimpleUploadedFile("data.db", b"")},
        "file",
        "The file is empty",
        id="empty file",
    ),
    pytest.param(
        lambda: {"file": SimpleUploadedFile("data.txt", b"SQLite format 3\x00" + b"\x00" * 200)},
        "file",
        "upload a SQLite database (.db, .sqlite, .sqlite3), a CSV or TSV file",
        id="wrong extension",
    ),
    pytest.param(
        lambda: {"file": SimpleUploadedFile("data.csv", b"SQLite format 3\x00" + b"\x00" * 200)},
        "file",
        "The file is not CSV text (it holds binary data)",
        id="database named .csv",
    ),
    pytest.param(lambda: {"title": ""}, "title", "Give the gallery a title.", id="missing title"),
    pytest.param(lambda: {"title": "   "}, "title", "Give the gallery a title.", id="blank title"),
    pytest.param(
        lambda: {"plugins": ["datasette-cluster-map", "datasette-made-up"]},
        "plugins",
        "Unknown plugin datasette-made-up: choose from the catalog",
        id="unknown plugin",
    ),
    pytest.param(
        lambda: {"file": ""},
        "file",
        "Choose a data file to upload: a SQLite database, CSV, TSV, JSON or Excel file.",
        id="no file",
    ),
    pytest.param(
        lambda: {"metadata": "title: [unclosed"},
        "metadata",
        "not valid YAML or JSON",
        id="broken metadata",
    ),
    pytest.param(
        lambda: {"metadata": "databases:\n  chinook:\n    title: x"},
        "metadata",
        "this gallery's database is called",
        id="metadata for another database",
    ),
    # Refused by the parser before anything else (a test that failed would take minutes, not 400).
    pytest.param(
        lambda: {"metadata": alias_bomb(), "plugins": [PLUGIN]},
        "metadata",
        "YAML anchors and aliases are not accepted; write the values out in full",
        id="alias bomb metadata",
    ),
    pytest.param(
        lambda: {"metadata": deep_json(), "plugins": [PLUGIN]},
        "metadata",
        f"nests mappings and lists more than {MAX_METADATA_DEPTH} levels deep",
        id="metadata nested 30000 deep",
    ),
]


def assert_nothing_created(storage: LocalStorage, sent_builds: list[str]) -> None:
    assert Gallery.objects.count() == 0
    assert Build.objects.count() == 0
    assert list(storage.keys("uploads/")) == []
    assert sent_builds == []


@pytest.fixture(autouse=True)
def one_megabyte_limit(settings) -> None:
    settings.UPLOAD_MAX_BYTES = 1024 * 1024


@pytest.mark.django_db
def test_the_form_page_offers_every_catalog_plugin_and_the_size_limit(client):
    response = client.get(PUBLISH)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="datasette-cluster-map"' in page
    assert 'value="datasette-pretty-json"' in page
    assert "up to 1 MB" in page
    assert "<progress" in page
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field", "message"), BAD_UPLOADS)
def test_a_bad_upload_shows_a_clear_error_and_stores_nothing(
    client,
    upload_data,
    storage,
    sent_builds,
    django_capture_on_commit_callbacks,
    overrides,
    field,
    message,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PUBLISH, upload_data(**overrides()))
    assert response.status_code == 400
    assert message in response.context["form"].errors[field][0]
    assert message.split(":")[0] in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert_nothing_created(storage, sent_builds)


@pytest.mark.django_db
@pytest.mark.parametrize(("overrides", "field", "message"), BAD_UPLOADS)
def test_a_bad_upload_from_the_script_gets_json_errors_by_field(
    client,
    upload_data,
    storage,
    sent_builds,
    django_capture_on_commit_callbacks,
    overrides,
    field,
    message,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PUBLISH, upload_data(**overrides()), **JSON)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert message in errors[field][0]
    assert_nothing_created(storage, sent_builds)


@pytest.mark.django_db
def test_a_good_upload_creates_a_gallery_and_a_queued_build_and_stores_the_file(
    client,
    upload_data,
    storage,
    sent_builds,
    sqlite_bytes,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            PUBLISH,
            upload_data(plugins=["datasette-pretty-json", "datasette-cluster-map"]),
        )

    build = Build.objects.select_related("gallery").get()
    assert response.status_code == 302
    assert response["Location"] == f"/builds/{build.id}/"
    assert build.state == BuildState.QUEUED
    assert build.source_key == f"uploads/{build.id}/source.db"
    assert build.source_bytes == len(sqlite_bytes)
    assert build.source_sha256 == hashlib.sha256(sqlite_bytes).hexdigest()
    assert storage.open(build.source_key).read() == sqlite_bytes
    gallery = build.gallery
    assert gallery.title == "Chinook"
    assert gallery.database_name == "chinook-sample"
    assert gallery.plugins == ["datasette-cluster-map", "datasette-pretty-json"]
    assert gallery.moderation_state == Gallery.ModerationState.PENDING
    assert gallery.live_build is None
    assert len(callbacks) == 1
    assert sent_builds == [build.id]


@pytest.mark.django_db
def test_the_build_is_enqueued_only_after_the_transaction_commits(
    client, upload_data, sent_builds, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(PUBLISH, upload_data())
    assert sent_builds == []
    callbacks[0]()
    assert sent_builds == [Build.objects.get().id]


@pytest.mark.django_db
def test_a_good_upload_from_the_script_answers_with_the_build_page(
    client, upload_data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PUBLISH, upload_data(), **JSON)
    assert response.status_code == 200
    assert response.json() == {"redirect": f"/builds/{Build.objects.get().id}/"}


@pytest.mark.django_db
def test_galleries_start_approved_when_auto_approve_is_on(client, upload_data, settings):
    settings.GALLERY_AUTO_APPROVE = True
    client.post(PUBLISH, upload_data())
    assert Gallery.objects.get().moderation_state == Gallery.ModerationState.APPROVED


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [{}, JSON], ids=["form", "script"])
def test_a_storage_outage_during_upload_says_so_and_creates_nothing(
    client,
    upload_data,
    storage,
    storage_outage,
    sent_builds,
    django_capture_on_commit_callbacks,
    accept,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PUBLISH, upload_data(), **accept)
    assert response.status_code == 503
    assert "Storage is unavailable; your file was not saved. Try again in a few minutes." in response.content.decode()
    assert_nothing_created(storage, sent_builds)


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [{}, JSON], ids=["form", "script"])
def test_anonymous_uploads_are_rate_limited_per_address(client, upload_data, settings, accept):
    settings.UPLOAD_RATE_LIMIT = "2/h"
    for _ in range(2):
        assert client.post(PUBLISH, upload_data()).status_code == 302
    response = client.post(PUBLISH, upload_data(), **accept)
    assert response.status_code == 429
    assert "Too many uploads from your address: the limit is 2 per hour." in response.content.decode()
    assert Build.objects.count() == 2
    other_address = client.post(PUBLISH, upload_data(), REMOTE_ADDR="10.1.2.3")
    assert other_address.status_code == 302


@pytest.mark.django_db
def test_a_body_declared_far_over_the_limit_is_refused_before_it_is_read(client, upload_data, settings, storage):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    huge = SimpleUploadedFile("big.db", b"SQLite format 3\x00" + b"\x00" * (2 * 1024 * 1024))
    response = client.post(PUBLISH, upload_data(file=huge), **JSON)
    assert response.status_code == 413
    assert "larger than the 1 MB limit" in response.json()["errors"]["file"][0]
    assert list(storage.keys("uploads/")) == []


@pytest.mark.django_db
def test_uploads_need_the_csrf_token(upload_data):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(PUBLISH, upload_data())
    assert response.status_code == 403
    assert Build.objects.count() == 0


def test_the_form_sorts_plugins_and_reports_unknown_ones_in_catalog_words(sqlite_bytes):
    files = {"file": SimpleUploadedFile("x.db", sqlite_bytes)}
    good = PublishForm(
        {
            "title": "T",
            "plugins": ["datasette-pretty-json", "datasette-cluster-map"],
            "visibility": "listed",
            "datasette_version": "0.65.5",
        },
        files,
    )
    assert good.is_valid(), good.errors
    assert good.cleaned_data["plugins"] == [
        "datasette-cluster-map",
        "datasette-pretty-json",
    ]
    bad = PublishForm(
        {
            "title": "T",
            "plugins": ["nope"],
            "visibility": "listed",
            "datasette_version": "0.65.5",
        },
        files,
    )
    assert not bad.is_valid()
    assert bad.errors["plugins"][0].startswith("Unknown plugin nope: choose from the catalog")


@pytest.mark.django_db
def test_metadata_and_plugin_settings_are_kept_on_the_gallery(
    client, upload_data, sent_builds, django_capture_on_commit_callbacks
):
    metadata = (
        "license: CC BY 4.0\n"
        "databases:\n  chinook-sample:\n    queries:\n      albums: select * from Album\n"
        "plugins:\n  datasette-cluster-map:\n    latitude_column: lat\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(PUBLISH, upload_data(plugins=["datasette-cluster-map"], metadata=metadata))
    assert response.status_code == 302
    gallery = Gallery.objects.get()
    assert gallery.metadata["license"] == "CC BY 4.0"
    assert gallery.metadata["databases"]["chinook-sample"]["queries"]["albums"] == "select * from Album"
    assert gallery.metadata["plugins"]["datasette-cluster-map"] == {"latitude_column": "lat"}


@pytest.mark.django_db
def test_the_plugins_page_lists_the_catalog_with_pinned_versions(client):
    from django.utils.html import escape

    from builder.catalog import load_catalog, load_lock

    page = client.get(reverse("gallery:plugins")).content.decode()
    pinned = load_lock("0.65.5")["packages"]
    for plugin in load_catalog().values():
        assert f'id="{plugin.name}"' in page
        assert escape(plugin.description) in page
        if "0.65.5" in plugin.verified_with:
            assert f"pinned {pinned[plugin.name]['version']}" in page


@pytest.mark.django_db
def test_the_plugins_page_lists_the_plugins_left_out_each_with_its_reason(client):
    import re

    from django.utils.html import escape

    from builder.catalog import load_left_out

    page = client.get(reverse("gallery:plugins")).content.decode()
    left_out = page.split('<h2 id="left-out">', 1)[1]
    for name, reason in load_left_out().items():
        row = re.search(rf'<tr id="left-out-{re.escape(name)}"><td>(.*?)</td><td>(.*?)</td></tr>', left_out)
        assert row, f"{name} is not listed as left out"
        assert row.group(1) == name
        assert row.group(2) == escape(reason)


@pytest.mark.django_db
def test_a_plugin_not_offered_with_the_chosen_datasette_is_refused(client, upload_data, storage, sent_builds):
    from builder.catalog import DATASETTE_VERSIONS, load_catalog

    for version in DATASETTE_VERSIONS:
        refused = [p.name for p in load_catalog().values() if not p.offered_with(version)]
        if refused:
            response = client.post(PUBLISH, upload_data(plugins=refused[:1], datasette_version=version), **JSON)
            assert response.status_code == 400
            assert f"Not offered with Datasette {version}" in response.json()["errors"]["plugins"][0]
            assert_nothing_created(storage, sent_builds)
            return
    pytest.skip("every catalog plugin is offered with every Datasette version")
