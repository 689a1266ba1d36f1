"""The moderation state machine, the audit log, file removal and review of new versions (gallery.services)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import DatabaseError, transaction

from gallery.models import AppendOnly, Approval, AuditEvent, BuildReview, BuildState, Gallery, is_trusted
from gallery.services import audit, galleries, moderation, publishing, removal, reports

pytestmark = pytest.mark.django_db

State = Gallery.ModerationState
ACTS = {
    # The moderator approves the version the moderation pages show them.
    State.APPROVED: lambda g: moderation.approve(g, build=moderation.build_to_review(g).pk),
    State.REJECTED: lambda g: moderation.reject(g, "Fix the licence."),
    State.TAKEN_DOWN: lambda g: moderation.take_down(g, "Abuse."),
}
ALLOWED = {
    (State.PENDING, State.APPROVED),
    (State.PENDING, State.REJECTED),
    (State.PENDING, State.TAKEN_DOWN),
    (State.APPROVED, State.REJECTED),
    (State.APPROVED, State.TAKEN_DOWN),
    (State.REJECTED, State.APPROVED),
    (State.REJECTED, State.TAKEN_DOWN),
}


@pytest.mark.parametrize("start", list(State))
@pytest.mark.parametrize("target", list(ACTS))
def test_every_transition_is_allowed_or_refused_as_the_issue_says(gallery, build, make_build, start, target):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=start)
    gallery.refresh_from_db()
    if start == State.REJECTED:
        make_build()  # the corrected version an appeal approves
    if (start, target) in ALLOWED:
        ACTS[target](gallery)
        gallery.refresh_from_db()
        assert gallery.moderation_state == target
        event = AuditEvent.objects.get(gallery_id=gallery.pk, details__to=target)
        assert event.details["from"] == start
    elif start == State.APPROVED and target == State.APPROVED:
        with pytest.raises(moderation.InvalidTransition, match="already approved, with no new version or reports"):
            ACTS[target](gallery)
    else:
        with pytest.raises(moderation.InvalidTransition):
            ACTS[target](gallery)
        gallery.refresh_from_db()
        assert gallery.moderation_state == start
        assert not AuditEvent.objects.filter(gallery_id=gallery.pk).exists()


@pytest.mark.parametrize("act", [moderation.reject, moderation.take_down])
def test_rejecting_or_taking_down_needs_a_reason(gallery, act):
    with pytest.raises(ValueError, match="Give a reason"):
        act(gallery, "  ")
    gallery.refresh_from_db()
    assert gallery.moderation_state == State.APPROVED


@pytest.mark.parametrize("remove", [
    lambda g: moderation.reject(g, "Personal data in the customers table."),
    lambda g: moderation.take_down(g, "Abuse."),
    lambda g: moderation.delete_gallery(g),
], ids=["reject", "take_down", "delete"])  # fmt: skip
def test_removal_deletes_every_builds_files_but_not_shared_ones(
    gallery, build, make_build, make_bundle, storage, django_capture_on_commit_callbacks, remove
):
    older = make_build()
    make_bundle(build)
    make_bundle(older)
    shared_before = sorted(storage.keys("runtime/")) + sorted(storage.keys("wheels/"))
    assert list(storage.keys(f"builds/{build.pk}/"))
    with django_capture_on_commit_callbacks(execute=True):
        remove(gallery)
    for each in (build, older):
        each.refresh_from_db()
        assert each.files_deleted
        assert list(storage.keys(f"builds/{each.pk}/")) == []
        assert list(storage.keys(each.source_key.rsplit("/", 1)[0] + "/")) == []
    assert sorted(storage.keys("runtime/")) + sorted(storage.keys("wheels/")) == shared_before
    gallery.refresh_from_db()
    assert gallery.live_build_id is None


def test_a_storage_outage_during_removal_leaves_the_build_marked_not_removed(
    gallery, build, make_bundle, storage_outage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        moderation.take_down(gallery, "Abuse.")
    build.refresh_from_db()
    gallery.refresh_from_db()
    assert gallery.moderation_state == State.TAKEN_DOWN  # the decision stands
    assert not build.files_deleted  # a later removal can try again


def test_a_deleted_gallery_is_a_tombstone_whose_origin_answers_410(content_client, gallery, build, bundle):
    moderation.delete_gallery(gallery)
    assert Gallery.objects.filter(pk=gallery.pk, moderation_state=State.DELETED).exists()
    assert content_client.get("/").status_code == 410
    with pytest.raises(moderation.InvalidTransition):
        moderation.delete_gallery(gallery)
    assert AuditEvent.objects.filter(gallery_id=gallery.pk, action="delete").count() == 1


def test_a_rejected_gallery_with_no_files_left_cannot_be_approved(gallery, build, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        moderation.reject(gallery, "Fix it.")
    with pytest.raises(moderation.InvalidTransition, match=r"upload a \(corrected\) version first"):
        moderation.approve(gallery, build=build.pk)
    build.refresh_from_db()
    assert build.review == BuildReview.REJECTED


def test_a_new_version_from_an_untrusted_publisher_waits_for_review(gallery, build, make_build, publisher):
    assert publishing.approval_for(publisher) == ""
    newer = make_build()
    assert publishing.finish_build(newer) is False
    gallery.refresh_from_db()
    assert gallery.live_build_id == build.pk  # the old version stays live
    moderation.approve(gallery, build=newer.pk)
    gallery.refresh_from_db()
    newer.refresh_from_db()
    assert gallery.live_build_id == newer.pk
    assert gallery.moderation_state == State.APPROVED
    assert (newer.review, newer.approval) == (BuildReview.APPROVED, Approval.MODERATOR)


def test_trusted_publishers_and_staff_skip_review(gallery, publisher, make_user):
    moderation.trust_publisher(publisher)
    assert is_trusted(publisher)
    assert publishing.approval_for(publisher) == Approval.TRUSTED
    staff = make_user("staff", staff=True)
    assert is_trusted(staff)
    assert publishing.approval_for(staff) == Approval.TRUSTED
    assert publishing.approval_for(None, by_operator=True) == Approval.OPERATOR
    assert AuditEvent.objects.filter(action="trust").count() == 1


def test_a_trusted_publishers_upload_is_approved_at_once(upload_data, publisher):
    moderation.trust_publisher(publisher)
    data = upload_data()
    build = galleries.accept_upload(upload=data["file"], filename="x.db", title="T", plugins=[], owner=publisher)
    assert build.gallery.moderation_state == State.APPROVED
    assert build.gallery.owner == publisher


def test_an_anonymous_upload_is_pending_and_recorded_with_a_hash_of_the_address(upload_data):
    data = upload_data()
    build = galleries.accept_upload(upload=data["file"], filename="x.db", title="T", plugins=[], uploader_ip="203.0.113.7")
    gallery = build.gallery
    assert gallery.moderation_state == State.PENDING
    assert len(gallery.uploader_ip_hash) == 64 and "203.0.113.7" not in gallery.uploader_ip_hash
    event = AuditEvent.objects.get(gallery_id=gallery.pk, action="upload")
    assert event.actor_label == f"anonymous {gallery.uploader_ip_hash[:8]}"


def test_the_publisher_is_emailed_the_reason(gallery, publisher, django_capture_on_commit_callbacks):
    Gallery.objects.filter(pk=gallery.pk).update(owner=publisher)
    gallery.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        moderation.reject(gallery, "The licence field is missing.")
    assert [m.to for m in mail.outbox] == [[publisher.email]]
    assert "The licence field is missing." in mail.outbox[0].body


def test_a_build_finishing_after_a_takedown_is_not_published_and_loses_its_files(
    gallery, build, make_build, make_bundle, storage, django_capture_on_commit_callbacks
):
    running = make_build(state=BuildState.UPLOADING)
    with django_capture_on_commit_callbacks(execute=True):
        moderation.take_down(gallery, "Abuse.")
    make_bundle(running)
    with pytest.raises(ValueError, match="taken down during the build"):
        publishing.finish_build(running)
    running.refresh_from_db()
    assert running.files_deleted
    assert list(storage.keys(f"builds/{running.pk}/")) == []


def test_the_audit_log_cannot_be_changed_or_deleted(gallery):
    event = audit.audit("approve", gallery=gallery, reason="ok")
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    for statement in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(reason="changed"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()
    assert AuditEvent.objects.get(pk=event.pk).reason == "ok"


def test_files_left_by_a_storage_outage_are_removed_later_by_the_command(
    gallery, build, make_build, make_bundle, storage, storage_outage, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    make_bundle(build)
    with django_capture_on_commit_callbacks(execute=True):
        moderation.reject(gallery, "Fix it.")  # storage is down: the files stay
    corrected = make_build()  # uploaded after the rejection: not to be removed
    make_bundle(corrected)
    assert [pk for pk, _ in removal.files_left_behind()] == [build.pk]
    monkeypatch.setattr("gallery.storage._storage", storage)  # storage is back
    call_command("remove_files")
    build.refresh_from_db()
    corrected.refresh_from_db()
    assert build.files_deleted and list(storage.keys(f"builds/{build.pk}/")) == []
    assert not corrected.files_deleted and list(storage.keys(f"builds/{corrected.pk}/"))


def test_a_hold_hides_the_gallery_keeps_its_files_and_approval_serves_it_again(
    content_client, gallery, build, bundle, storage, client
):
    assert reports.hold_for_review(gallery, "Held for review automatically: 3 readers reported it.")
    assert not reports.hold_for_review(gallery, "again")  # already held
    assert content_client.get("/").status_code == 404
    assert b"self.registration.unregister()" in content_client.get("/sw.js").content  # the kill switch
    assert list(storage.keys(f"builds/{build.pk}/"))  # nothing removed
    gallery.refresh_from_db()
    assert not gallery.is_public
    moderation.approve(gallery, build=build.pk)  # the live build is what a moderator reviews for a hold
    gallery.refresh_from_db()
    assert gallery.is_public and gallery.live_build_id == build.pk
    assert content_client.get("/").status_code == 200
    assert AuditEvent.objects.get(gallery_id=gallery.pk, action="approve").details["released_hold"] is True


def test_a_held_gallery_can_be_taken_down(gallery, build):
    reports.hold_for_review(gallery, "Reports.")
    moderation.take_down(gallery, "Upheld: personal data.")
    gallery.refresh_from_db()
    assert (gallery.moderation_state, gallery.held_at) == (State.TAKEN_DOWN, None)
