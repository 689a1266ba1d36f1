"""Publishing, moderation and rebuilds through gallery.services, seen from the content origin."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from builder.sqlite_check import format_megabytes
from gallery.models import Approval, AuditEvent, Build, BuildReview, BuildState, Gallery
from gallery.services import galleries, moderation, publishing, uploads

pytestmark = pytest.mark.django_db


def test_publishing_a_build_flips_the_live_pointer(gallery, build, make_build):
    newer = make_build(state=BuildState.UPLOADING, review=BuildReview.APPROVED)
    publishing.publish_build(newer)
    gallery.refresh_from_db()
    assert gallery.live_build_id == newer.id


def test_a_build_nobody_approved_never_goes_live(gallery, build, make_build):
    waiting = make_build(state=BuildState.UPLOADING)
    with pytest.raises(ValueError, match="only an approved build can go live"):
        publishing.publish_build(waiting)
    assert publishing.finish_build(waiting) is False  # ready, but it waits for a moderator
    gallery.refresh_from_db()
    assert gallery.live_build_id == build.id
    event = AuditEvent.objects.get(build_id=waiting.id, action=AuditEvent.Action.BUILD_READY)
    assert event.details == {"live": False, "superseded": False, "waits_for_review": True}


def test_an_older_build_finishing_after_a_newer_one_does_not_replace_it(gallery, build, make_build):
    older = make_build(state=BuildState.UPLOADING, review=BuildReview.APPROVED)
    newer = make_build(state=BuildState.UPLOADING, review=BuildReview.APPROVED)
    assert older.created_at < newer.created_at
    assert publishing.publish_build(newer) is True
    assert publishing.publish_build(older) is False  # a retried or slow build finishing late
    gallery.refresh_from_db()
    assert gallery.live_build_id == newer.id


def test_a_build_finishing_late_stays_ready_off_the_live_pointer_and_says_why(gallery, build, make_build):
    older = make_build(state=BuildState.UPLOADING, review=BuildReview.APPROVED)
    newer = make_build(state=BuildState.UPLOADING, review=BuildReview.APPROVED)
    assert publishing.finish_build(newer) is True
    assert publishing.finish_build(older) is False
    gallery.refresh_from_db()
    assert gallery.live_build_id == newer.id
    older.refresh_from_db()
    assert "A newer build of this gallery is already live" in older.log
    event = AuditEvent.objects.get(build_id=older.id, action=AuditEvent.Action.BUILD_READY)
    assert event.details == {"live": False, "superseded": True, "waits_for_review": False}


def test_a_build_may_be_published_again(gallery, build):
    assert publishing.publish_build(build) is True  # idempotent: a redelivered task publishes twice
    gallery.refresh_from_db()
    assert gallery.live_build_id == build.id


@pytest.mark.parametrize("state", [BuildState.FAILED, BuildState.CANCELLED])
def test_a_failed_or_cancelled_build_cannot_go_live(gallery, build, state):
    broken = Build.objects.create(
        gallery=gallery, source_key="k", source_sha256="0" * 64, source_bytes=1
    )
    Build.objects.filter(pk=broken.pk).update(
        state=state
    )  # the worker's copy still says queued
    with pytest.raises(ValueError, match="only a complete build can go live"):
        publishing.publish_build(broken)
    gallery.refresh_from_db()
    assert gallery.live_build_id == build.id


def test_approving_a_pending_gallery_serves_the_build_the_moderator_reviewed(content_client, bundle, gallery, build):
    # As a pending upload is: the gallery pending, its one ready build waiting for review, nothing live.
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state="pending", live_build=None)
    Build.objects.filter(pk=build.pk).update(review=BuildReview.PENDING, approval="")
    gallery.refresh_from_db()
    assert content_client.get("/").status_code == 404
    moderation.approve(gallery, build=build.id)
    assert content_client.get("/").status_code == 200
    build.refresh_from_db()
    assert (build.review, build.approval) == (BuildReview.APPROVED, Approval.MODERATOR)


def test_rejecting_keeps_the_reason_and_stops_serving(content_client, bundle, gallery):
    moderation.reject(gallery, "  Contains personal data.  ")
    gallery.refresh_from_db()
    assert gallery.moderation_state == Gallery.ModerationState.REJECTED
    assert gallery.moderation_reason == "Contains personal data."
    assert content_client.get("/").status_code == 404


def test_a_takedown_serves_410_on_every_path(content_client, bundle, gallery, build):
    moderation.take_down(gallery, "Abuse report upheld.")
    gallery.refresh_from_db()
    assert gallery.moderation_state == Gallery.ModerationState.TAKEN_DOWN
    assert not gallery.is_public
    assert content_client.get(f"/_build/{build.id}/data/chinook.db").status_code == 410
    assert content_client.get("/").status_code == 410


def test_a_rebuild_queues_a_new_build_from_the_same_upload(
    gallery, build, sent_builds, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        new = publishing.rebuild(gallery)
    assert new.id != build.id
    assert new.state == BuildState.QUEUED
    # A moderator's (or the system's) rebuild of the live build: approved, nothing new in it.
    assert (new.review, new.approval) == (BuildReview.APPROVED, Approval.REBUILD)
    assert (new.source_key, new.source_sha256, new.source_bytes) == (
        build.source_key,
        build.source_sha256,
        build.source_bytes,
    )
    assert sent_builds == [new.id]
    gallery.refresh_from_db()
    assert (
        gallery.live_build_id == build.id
    )  # the old bundle stays live until the new one is complete


def test_a_gallery_without_an_upload_cannot_be_rebuilt(gallery):
    with pytest.raises(ValueError, match="no upload to rebuild from"):
        publishing.rebuild(gallery)


def test_an_upload_while_the_queue_is_down_is_kept_and_sent_by_the_sweeper_once_it_is_back(
    upload_data, monkeypatch, django_capture_on_commit_callbacks, sent_builds, storage
):
    from datetime import timedelta

    from django.utils import timezone

    from gallery.services import recovery

    def broker_down(build_id: str) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("gallery.services.queue.send_build", broker_down)
    data = upload_data()
    with django_capture_on_commit_callbacks(execute=True):
        build = galleries.accept_upload(
            upload=data["file"], filename="x.db", title="T", plugins=[]
        )
    build.refresh_from_db()
    assert build.state == BuildState.QUEUED and build.sent_at is None and build.waits_for_queue
    assert "the build starts by itself once it is back" in build.log
    assert storage.exists(build.source_key)  # the upload is kept

    later = timezone.now() + timedelta(seconds=recovery.UNSENT_GRACE + 1)
    assert recovery.sweep_builds(now=later).broker_down  # still down: nothing sent, nothing lost
    assert Build.objects.get(pk=build.pk).waits_for_queue
    monkeypatch.setattr("gallery.services.queue.send_build", sent_builds.append)  # the broker is back
    result = recovery.sweep_builds(now=later)
    assert result.sent == sent_builds == [build.id]
    build.refresh_from_db()
    assert build.sent_at is not None and not build.waits_for_queue


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"visibility": "secret"}, "Visibility must be one of listed, unlisted."),
        ({"datasette_version": "0.1"}, "Datasette 0.1 is not offered"),
        ({"title": " "}, "Give the gallery a title."),
        ({"filename": "x.txt"}, "upload a SQLite database \\(.db, .sqlite, .sqlite3\\)"),
    ],
)
def test_accept_upload_checks_everything_again(sqlite_bytes, storage, kwargs, message):
    arguments = {
        "upload": SimpleUploadedFile("x.db", sqlite_bytes),
        "filename": "x.db",
        "title": "T",
        "plugins": [],
        **kwargs,
    }
    with pytest.raises(uploads.UploadRejected, match=message):
        galleries.accept_upload(**arguments)
    assert Gallery.objects.count() == 0
    assert list(storage.keys("uploads/")) == []


@pytest.mark.parametrize(
    ("size", "text"), [(100 * 1024 * 1024, "100 MB"), (1536 * 1024, "1.5 MB")]
)
def test_sizes_are_shown_in_megabytes(size, text):
    assert format_megabytes(size) == text
