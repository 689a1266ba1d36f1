"""``manage.py publish``: the same checks as the form, and --wait following the build."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from builder.metadata import MAX_METADATA_DEPTH
from gallery.models import Build, BuildState, Gallery
from tests.support.hostile_metadata import PLUGIN, alias_bomb, deep_json


def publish(*args: str) -> str:
    out = StringIO()
    call_command("publish", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "name", "extra", "message"),
    [
        (None, "missing.db", [], "No such file: "),
        (
            b"just some text, not a database",
            "notes.db",
            [],
            "This is not a SQLite database",
        ),
        (b"", "empty.db", [], "The file is empty"),
        ("sqlite", "data.txt", [], r"upload a SQLite database \(.db, .sqlite, .sqlite3\)"),
        ("sqlite", "data.csv", [], r"The file is not CSV text \(it holds binary data\)"),
        (
            "sqlite",
            "data.db",
            ["--plugin", "datasette-nope"],
            "Unknown plugin datasette-nope: choose from the catalog",
        ),
    ],
    ids=["bad path", "non-sqlite", "empty", "wrong extension", "database named .csv", "unknown plugin"],
)
def test_the_command_refuses_a_bad_upload_with_the_same_clear_message(
    tmp_path, sqlite_bytes, storage, sent_builds, content, name, extra, message
):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(sqlite_bytes if content == "sqlite" else content)
    with pytest.raises(CommandError, match=message):
        publish(str(path), *extra)
    assert Build.objects.count() == 0
    assert list(storage.keys("uploads/")) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param(alias_bomb(), "YAML anchors and aliases are not accepted", id="alias bomb"),
        pytest.param(deep_json(), f"more than {MAX_METADATA_DEPTH} levels deep", id="nested 30000 deep"),
    ],
)
def test_the_command_refuses_metadata_that_would_cost_minutes_and_creates_nothing(
    tmp_path, make_sqlite, storage, sent_builds, metadata, message
):
    metadata_file = tmp_path / "metadata.yml"
    metadata_file.write_text(metadata)
    with pytest.raises(CommandError, match=message):
        publish(str(make_sqlite()), "--plugin", PLUGIN, "--metadata", str(metadata_file))
    assert Gallery.objects.count() == 0 and Build.objects.count() == 0
    assert list(storage.keys("uploads/")) == []
    assert sent_builds == []


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_datasette_version(make_sqlite):
    with pytest.raises(CommandError, match="invalid choice"):
        publish(str(make_sqlite()), "--datasette-version", "0.1")


@pytest.mark.django_db
def test_a_storage_outage_fails_the_command_with_a_clear_message(
    make_sqlite, storage_outage
):
    with pytest.raises(
        CommandError, match="Storage is unavailable; your file was not saved"
    ):
        publish(str(make_sqlite()))
    assert Gallery.objects.count() == 0


@pytest.mark.django_db
def test_the_command_publishes_and_prints_the_build_page_and_gallery_url(
    make_sqlite, storage, sent_builds, django_capture_on_commit_callbacks
):
    path = make_sqlite("fixtures.sqlite")
    with django_capture_on_commit_callbacks(execute=True):
        out = publish(
            str(path),
            "--title",
            "Fixtures",
            "--plugin",
            "datasette-pretty-json",
            "--unlisted",
            "--approve",
        )
    build = Build.objects.select_related("gallery").get()
    gallery = build.gallery
    assert f"Build page:  http://127.0.0.1:8000/builds/{build.id}/" in out
    assert f"Gallery URL: {gallery.url}" in out
    assert (gallery.title, gallery.visibility, gallery.moderation_state) == (
        "Fixtures",
        "unlisted",
        "approved",
    )
    assert gallery.plugins == ["datasette-pretty-json"]
    assert gallery.database_name == "fixtures"
    assert storage.open(build.source_key).read() == path.read_bytes()
    assert sent_builds == [build.id]


@pytest.mark.django_db
def test_the_command_publishes_a_csv_with_full_text_search_on_the_columns_named(tmp_path, storage, sent_builds):
    path = tmp_path / "Bird Counts.csv"
    path.write_text("name,notes,count\nheron,tall,3\n")
    publish(str(path), "--title", "Birds", "--full-text-search", "--search-column", "name", "--search-column", "notes")
    build = Build.objects.select_related("gallery").get()
    assert build.source_key == f"uploads/{build.id}/source.csv"
    assert storage.open(build.source_key).read() == path.read_bytes()
    assert (build.gallery.database_name, build.gallery.full_text_search) == ("bird-counts", True)
    assert list(build.search_columns) == ["name", "notes"]


def fake_worker(
    monkeypatch: pytest.MonkeyPatch, outcome: str, reason: str = ""
) -> None:
    """Replace the queue with a worker that finishes the build at once, as the real one would later."""

    def run(build_id: str) -> None:
        build = Build.objects.get(pk=build_id)
        build.append_log("Validating chinook.db")
        build.set_state(BuildState.VALIDATING)
        if outcome:
            build.append_log("Done." if outcome == BuildState.READY else "Stopped.")
            build.set_state(outcome, reason)

    monkeypatch.setattr("gallery.services.queue.send_build", run)


@pytest.mark.django_db(transaction=True)
def test_waiting_prints_the_log_and_succeeds_when_the_build_is_ready(
    make_sqlite, monkeypatch
):
    fake_worker(monkeypatch, BuildState.READY)
    out = publish(str(make_sqlite()), "--wait", "--timeout", "10")
    assert "Validating chinook.db\nDone.\n" in out
    assert "Built; waiting for a moderator to approve it" in out


@pytest.mark.django_db(transaction=True)
def test_waiting_fails_with_the_reason_when_the_build_fails(make_sqlite, monkeypatch):
    fake_worker(monkeypatch, BuildState.FAILED, "The database has no tables or views.")
    with pytest.raises(
        CommandError, match=r"failed: The database has no tables or views\."
    ):
        publish(str(make_sqlite()), "--wait", "--timeout", "10")


@pytest.mark.django_db(transaction=True)
def test_waiting_gives_up_after_the_timeout(make_sqlite, monkeypatch):
    fake_worker(monkeypatch, "")
    with pytest.raises(
        CommandError, match=r"Timed out after 0.3 s; build \w+ is still validating"
    ):
        publish(str(make_sqlite()), "--wait", "--timeout", "0.3")


def test_the_command_has_help_for_every_option(capsys):
    with pytest.raises(SystemExit):
        call_command("publish", "--help")
    text = capsys.readouterr().out
    for option in (
        "--title",
        "--description",
        "--plugin",
        "--unlisted",
        "--datasette-version",
        "--approve",
        "--wait",
        "--timeout",
    ):
        assert option in text


def test_the_sqlite_fixture_is_a_real_database(make_sqlite):
    assert make_sqlite().read_bytes().startswith(b"SQLite format 3\x00")
    assert isinstance(make_sqlite("other.db"), Path)
