"""The build page, its status JSON, the public list and the health check."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from gallery.models import Build, BuildState, Gallery

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(gallery: Gallery) -> Build:
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    return Build.objects.create(
        gallery=gallery,
        source_key="uploads/q/source.db",
        source_sha256="1" * 64,
        source_bytes=10,
        log="Checking the SQLite header.\n",
        sent_at=timezone.now(),
    )


def status(client, build: Build) -> dict:
    response = client.get(reverse("gallery:build-status", args=[build.id]))
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    return response.json()


def test_the_status_of_a_queued_build_has_its_state_and_log_and_no_gallery_url(admin_client, queued):
    assert status(admin_client, queued) == {
        "state": "queued",
        "state_label": "Queued",
        "log": "Checking the SQLite header.\n",
        "failure_reason": "",
        "gallery_url": None,
        "gallery_page": None,
        "is_public": False,
        "moderation_state": "pending",
        "finished": False,
        "queue_note": "",
        "warnings": [],
        "tables": [],
    }


def test_a_build_that_could_not_reach_the_queue_says_it_waits_and_starts_by_itself(client, queued):
    Build.objects.filter(pk=queued.pk).update(sent_at=None)
    note = status(client, queued)["queue_note"]
    assert "Waiting for the build queue" in note and "starts by itself" in note
    page = client.get(queued.get_absolute_url()).content.decode()
    assert 'id="queue-note"' in page and "you need not publish again" in page
    queued.set_state(BuildState.VALIDATING)  # a worker took it: the note goes
    assert status(client, queued)["queue_note"] == ""


def test_a_ready_build_of_an_approved_gallery_shows_the_gallery_url(client, build, gallery):
    data = status(client, build)
    assert data["finished"] is True
    assert data["is_public"] is True
    assert data["gallery_url"] == f"http://{gallery.id}.localhost:8000/"
    assert data["gallery_page"] == f"/g/{gallery.id}/"
    page = client.get(build.get_absolute_url()).content.decode()
    assert "Your gallery is live at" in page
    assert gallery.url in page


def test_a_ready_build_waiting_for_moderation_says_so(client, build, gallery):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    assert status(client, build)["gallery_url"] is None
    page = client.get(build.get_absolute_url()).content.decode()
    assert "Built; waiting for a moderator to approve it" in page
    assert gallery.url not in page


def test_a_failed_build_shows_the_reason_and_what_to_do(admin_client, queued):
    queued.append_log("quick_check: page 3 is damaged")
    queued.set_state(BuildState.FAILED, "SQLite reports the database is damaged.")
    response = admin_client.get(queued.get_absolute_url())
    page = response.content.decode()
    assert "The build failed." in page
    assert "SQLite reports the database is damaged." in page
    assert "publish the file again" in page
    assert "quick_check: page 3 is damaged" in page
    assert status(admin_client, queued)["finished"] is True


# --- The log: for who may manage the gallery, and staff ----------------------------------------------

#: What a crashed build's log holds (``worker_shell.tasks`` writes ``traceback.format_exc()``).
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/glasshouse/worker_shell/tasks.py", line 212, in run_build\n'
    "RuntimeError: secret detail of the build host\n"
)
CRASH_REASON = "The build crashed on our side; the log has the details. Nothing was published. Try again later."


def failed_build(gallery: Gallery, **fields: object) -> Build:
    """A failed build of ``gallery`` with ``fields`` (log, failure reason, warnings, tables...)."""
    return Build.objects.create(
        gallery=gallery, state=BuildState.FAILED, source_key="uploads/f/source.db", source_sha256="2" * 64,
        source_bytes=8192, **fields,
    )  # fmt: skip


@pytest.fixture
def crashed(gallery: Gallery, build: Build) -> Build:
    """A crashed build of ``gallery``, which is public (approved, live ``build``) and has no owner."""
    return failed_build(
        gallery,
        log="== Validating the database\n" + TRACEBACK,
        failure_reason=CRASH_REASON,
        warnings=["This database was in WAL mode."],
    )


def _as(who: str, client, gallery: Gallery, request: pytest.FixtureRequest):
    """``client`` made into ``who``: anonymous, stranger, owner, link holder, moderator, or staff without build access."""
    from gallery.services import ownership

    if who == "owner":
        request.getfixturevalue("owned_gallery")  # ``gallery``, now the publisher's
        client.force_login(request.getfixturevalue("publisher"))
    elif who == "link holder":
        token = ownership.new_management_token(gallery)
        assert client.get(reverse("gallery:manage-link", args=[gallery.pk, token])).status_code == 302
    elif who == "stranger":
        client.force_login(request.getfixturevalue("stranger"))
    elif who == "moderator":
        client.force_login(request.getfixturevalue("moderator"))
    elif who == "staff without build access":
        client.force_login(request.getfixturevalue("make_user")("staff", staff=True))
    return client


@pytest.mark.parametrize(
    ("who", "sees_log"),
    [
        ("anonymous", False),
        ("stranger", False),
        ("staff without build access", False),
        ("owner", True),
        ("link holder", True),
        ("moderator", True),
    ],
)
def test_the_log_of_a_build_is_shown_only_to_who_may_manage_the_gallery_and_to_moderators(
    client, crashed, gallery, request, who, sees_log
):
    _as(who, client, gallery, request)
    page = client.get(crashed.get_absolute_url()).content.decode()
    data = status(client, crashed)
    # Everyone sees the steps, the state, the reason and the warnings.
    assert 'data-state="validating" class="stopped"' in page
    assert "The build failed." in page and CRASH_REASON in page
    assert "This database was in WAL mode." in page
    assert data["state"] == "failed" and data["failure_reason"] == CRASH_REASON
    assert data["warnings"] == ["This database was in WAL mode."]
    # The log, with its traceback, only for some.
    assert ("RuntimeError: secret detail" in page) is sees_log
    assert ('id="log"' in page) is sees_log
    assert ("shown to the gallery's publisher and to moderators only" in page) is not sees_log
    assert data["log"] == (crashed.log if sees_log else None)


def test_the_build_page_lists_the_steps_and_marks_the_current_one(client, queued):
    queued.set_state(BuildState.RESOLVING)
    page = client.get(queued.get_absolute_url()).content.decode()
    for label in (
        "Queued",
        "Validating the database",
        "Resolving Datasette and plugins",
        "Writing the bundle",
        "Uploading the bundle",
        "Ready",
    ):
        assert label in page
    assert 'data-state="validating" class="done"' in page
    assert 'data-state="resolving" class="current"' in page
    assert 'data-state="bundling" class="todo"' in page
    assert reverse("gallery:build-status", args=[queued.id]) in page


@pytest.mark.parametrize("name", ["gallery:build", "gallery:build-status"])
def test_an_unknown_build_is_404(client, name):
    assert client.get(reverse(name, args=["nosuchbuild00000"])).status_code == 404


@pytest.mark.parametrize(
    ("visibility", "moderation_state", "live", "listed"),
    [
        ("listed", "approved", True, True),
        ("unlisted", "approved", True, False),
        ("listed", "pending", True, False),
        ("listed", "rejected", True, False),
        ("listed", "taken_down", True, False),
        ("listed", "approved", False, False),
    ],
)
def test_the_front_page_lists_only_listed_approved_galleries_with_a_live_build(
    client, build, gallery, visibility, moderation_state, live, listed
):
    Gallery.objects.filter(pk=gallery.pk).update(
        visibility=visibility,
        moderation_state=moderation_state,
        live_build=build if live else None,
    )
    page = client.get(reverse("gallery:index")).content.decode()
    assert (gallery.url in page) is listed
    assert ("Chinook" in page) is listed


def test_the_health_check_says_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


#: Markup a hostile database puts in its table and column names (``tests/corpus``, ``html_names``).
HOSTILE_TABLE = '<script>alert("table")</script>'
HOSTILE_COLUMN = "<img src=x onerror=alert(1)>"


@pytest.fixture
def hostile_build(gallery: Gallery) -> Build:
    """A build whose log, failure reason, warnings and tables carry the names of a hostile database."""
    return failed_build(
        gallery,
        log=f"Tables: {HOSTILE_TABLE} (2 rows).\n",
        failure_reason=f"Column `{HOSTILE_COLUMN}` of table `{HOSTILE_TABLE}` calls nosuch(). Drop the column.",
        warnings=[f"This database was in WAL mode {HOSTILE_COLUMN}."],
        tables=[{"name": HOSTILE_TABLE, "rows": 2, "columns": [HOSTILE_COLUMN]}],
    )


def test_the_build_page_shows_names_from_the_database_as_text(admin_client, hostile_build):
    page = admin_client.get(hostile_build.get_absolute_url()).content.decode()
    for markup in (HOSTILE_TABLE, HOSTILE_COLUMN):
        assert markup not in page
    assert "&lt;script&gt;alert(&quot;table&quot;)&lt;/script&gt; (2 rows)" in page  # the log
    assert "Column `&lt;img src=x onerror=alert(1)&gt;` of table" in page  # the failure reason
    assert 'class="notice warning"' in page and "WAL mode &lt;img" in page  # the warning


@pytest.mark.parametrize(
    "url", ["admin:gallery_build_change", "admin:gallery_gallery_change", "admin:gallery_submission_changelist"]
)
def test_the_admin_shows_names_from_the_database_as_text(admin_client, hostile_build, url):
    # A pending gallery whose build is ready: the change page and the queue show its tables.
    Build.objects.filter(pk=hostile_build.pk).update(state=BuildState.READY)
    Gallery.objects.filter(pk=hostile_build.gallery_id).update(moderation_state=Gallery.ModerationState.PENDING)
    args = {"build": [hostile_build.id], "gallery": [hostile_build.gallery_id]}.get(url.split("_")[1], [])
    args = [] if url.endswith("changelist") else args
    response = admin_client.get(reverse(url, args=args))
    assert response.status_code == 200
    page = response.content.decode()
    for markup in (HOSTILE_TABLE, HOSTILE_COLUMN):
        assert markup not in page
    assert "&lt;script&gt;alert(&quot;table&quot;)&lt;/script&gt;" in page


def test_a_build_with_warnings_shows_them_on_the_page_and_in_its_status(client, queued):
    Build.objects.filter(pk=queued.pk).update(warnings=["This database was in WAL mode."])
    assert status(client, queued)["warnings"] == ["This database was in WAL mode."]
    page = client.get(queued.get_absolute_url()).content.decode()
    assert '<div class="notice warning"><strong>Warning:</strong> This database was in WAL mode.</div>' in page
