"""Moderation actions in the admin call the services."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from gallery.models import Approval, AuditEvent, Build, BuildReview, BuildState, Gallery, Publisher, Report

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:gallery_gallery_changelist")


def act(admin_client, action: str, gallery: Gallery, **extra: str):
    return admin_client.post(
        CHANGELIST, {"action": action, ACTION_CHECKBOX_NAME: [gallery.pk], **extra}
    )


def shown_versions(client, url: str) -> list[str]:
    """The ``reviewed_build`` values (``<gallery-id>:<build-id>``) a change list page carries, as a browser posts them."""
    return re.findall(r'<input type="hidden" name="reviewed_build" value="([^"]+)">', client.get(url).content.decode())


def approve_from_list(client, url: str, galleries: list[Gallery]):
    """Tick ``galleries`` on the change list at ``url`` and run the approve action, as a moderator's browser does."""
    versions = shown_versions(client, url)
    return client.post(
        url, {"action": "approve_galleries", ACTION_CHECKBOX_NAME: [g.pk for g in galleries], "reviewed_build": versions}
    )


def make_pending(gallery: Gallery, build: Build) -> None:
    """Make ``gallery`` what a fresh upload is: pending, nothing live, its ready build waiting for review."""
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state="pending", live_build=None)
    Build.objects.filter(pk=build.pk).update(review=BuildReview.PENDING, approval="")
    gallery.refresh_from_db()


def test_a_moderator_can_approve_a_pending_gallery(admin_client, gallery, build):
    make_pending(gallery, build)
    assert shown_versions(admin_client, CHANGELIST) == [f"{gallery.pk}:{build.pk}"]
    response = approve_from_list(admin_client, CHANGELIST, [gallery])
    assert response.status_code == 302
    gallery.refresh_from_db()
    build.refresh_from_db()
    assert gallery.moderation_state == "approved" and gallery.live_build_id == build.pk
    assert (build.review, build.reviewed_by.username) == (BuildReview.APPROVED, "admin")


def test_a_bulk_approval_without_the_version_the_list_showed_approves_nothing(admin_client, gallery, build):
    make_pending(gallery, build)
    response = act(admin_client, "approve_galleries", gallery)  # no reviewed_build: not drawn by the list
    assert response.status_code == 302
    gallery.refresh_from_db()
    assert gallery.moderation_state == "pending"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("did not show a version to approve" in m for m in messages)


def test_a_bulk_approval_refuses_a_gallery_whose_newer_version_arrived_after_the_list_was_drawn(
    admin_client, gallery, build, make_build
):
    make_pending(gallery, build)
    versions = shown_versions(admin_client, CHANGELIST)  # the moderator reviews `build`...
    newer = make_build()  # ...while the publisher's next upload finishes building
    response = admin_client.post(
        CHANGELIST, {"action": "approve_galleries", ACTION_CHECKBOX_NAME: [gallery.pk], "reviewed_build": versions},
        follow=True,
    )  # fmt: skip
    assert "A newer version" in response.content.decode() and "review it" in response.content.decode()
    gallery.refresh_from_db()
    newer.refresh_from_db()
    build.refresh_from_db()
    assert gallery.moderation_state == "pending" and gallery.live_build_id is None
    assert build.review == newer.review == BuildReview.PENDING


def test_taking_down_asks_for_a_reason_first(admin_client, gallery, build):
    assert act(admin_client, "take_down_galleries", gallery).status_code == 200
    done = act(admin_client, "take_down_galleries", gallery, apply="1", reason="Abuse")
    assert done.status_code == 302
    gallery.refresh_from_db()
    assert (gallery.moderation_state, gallery.moderation_reason) == ("taken_down", "Abuse")


def test_rejecting_asks_for_a_reason_first(admin_client, gallery):
    ask = act(admin_client, "reject_galleries", gallery)
    assert ask.status_code == 200
    assert b"The reason is shown to the publisher" in ask.content
    gallery.refresh_from_db()
    assert gallery.moderation_state == Gallery.ModerationState.APPROVED
    done = act(
        admin_client, "reject_galleries", gallery, apply="1", reason="Personal data"
    )
    assert done.status_code == 302
    gallery.refresh_from_db()
    assert (gallery.moderation_state, gallery.moderation_reason) == (
        "rejected",
        "Personal data",
    )


def test_rebuilding_from_the_admin_queues_a_build(
    admin_client, gallery, build, sent_builds, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        act(admin_client, "rebuild_galleries", gallery)
    new = gallery.builds.exclude(pk=build.pk).get()
    assert new.state == BuildState.QUEUED
    assert sent_builds == [new.id]
    # The moderator is on the record, not "system"; the rebuild of the live build is approved by them.
    event = AuditEvent.objects.get(action="rebuild", build_id=new.pk)
    assert (event.actor.username, event.actor_label) == ("admin", "admin@example.com (staff)")
    assert (new.review, new.approval, new.reviewed_by.username) == (BuildReview.APPROVED, Approval.REBUILD, "admin")


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:gallery_gallery_changelist"),
        reverse("admin:gallery_build_changelist"),
    ],
)
def test_the_admin_lists_render(admin_client, build, url):
    assert admin_client.get(url).status_code == 200


def test_a_build_shows_its_log_read_only(admin_client, build):
    page = admin_client.get(
        reverse("admin:gallery_build_change", args=[build.pk])
    ).content.decode()
    assert "Validated." in page
    assert 'name="log"' not in page


def test_cancelling_a_running_build_from_the_admin(admin_client, gallery):
    running = Build.objects.create(
        gallery=gallery,
        state=BuildState.BUNDLING,
        source_key="k",
        source_sha256="0" * 64,
        source_bytes=1,
    )
    admin_client.post(
        reverse("admin:gallery_build_changelist"),
        {"action": "cancel_builds", ACTION_CHECKBOX_NAME: [running.pk]},
    )
    running.refresh_from_db()
    assert running.state == BuildState.CANCELLED


# --- The queue, the gallery page's actions, moderators' permissions, the audit log -----------

QUEUE = reverse("admin:gallery_submission_changelist")


@pytest.fixture
def moderator_client(client, moderator):
    client.force_login(moderator)
    return client


@pytest.fixture
def pending(gallery, build):
    """``gallery`` pending (nothing live), its build waiting for review and described as a build
    describes it (tables, scan flags)."""
    make_pending(gallery, build)
    Gallery.objects.filter(pk=gallery.pk).update(uploader_ip_hash="ab12cd34" + "0" * 56)
    Build.objects.filter(pk=build.pk).update(
        tables=[{"name": "Customer", "rows": 59, "columns": ["CustomerId", "Email", "Phone"]}],
        scan_flags=[{"table": "Customer", "column": "Email", "kind": "email", "count": 59, "sampled": 59,
                     "examples": ["l***@e***.br", "l***@m***.de"]}],
    )  # fmt: skip
    gallery.refresh_from_db()
    return gallery


def test_the_queue_shows_what_a_moderator_decides_on(moderator_client, pending, build):
    Report.objects.create(gallery=pending, reason="personal_data", reporter_key="r1")
    page = moderator_client.get(QUEUE).content.decode()
    assert pending.title in page and "Music store" in page
    assert "anonymous, IP hash ab12cd34" in page
    assert "Customer" in page and "59 rows" in page and "CustomerId, Email, Phone" in page
    assert "datasette-pretty-json" in page
    assert "<strong>email</strong>: Customer.Email: 59 of 59 (l***@e***.br, l***@m***.de)" in page
    assert 'href="http://pv-' in page  # the signed preview link
    assert '<td class="field-report_count">1</td>' in page


def test_the_queue_holds_only_what_waits_for_a_moderator(moderator_client, pending, other_gallery, make_build):
    rejected = Gallery.objects.create(title="Rejected, nothing new", moderation_state="rejected")
    page = moderator_client.get(QUEUE).content.decode()
    assert pending.title in page
    assert other_gallery.title not in page  # approved, no new version
    assert rejected.title not in page
    live = make_build(of=other_gallery, review=BuildReview.APPROVED)
    Gallery.objects.filter(pk=other_gallery.pk).update(live_build=live)
    assert other_gallery.title not in moderator_client.get(QUEUE).content.decode()
    make_build(of=other_gallery)  # a new version waiting for review
    assert other_gallery.title in moderator_client.get(QUEUE).content.decode()


def test_a_moderator_approves_in_bulk_from_the_queue(moderator_client, pending, build, other_gallery, make_build):
    other = make_build(of=other_gallery)
    Gallery.objects.filter(pk=other_gallery.pk).update(moderation_state="pending")
    response = approve_from_list(moderator_client, QUEUE, [pending, other_gallery])
    assert response.status_code == 302
    assert set(Gallery.objects.values_list("moderation_state", flat=True)) == {"approved"}
    assert set(Gallery.objects.values_list("live_build", flat=True)) == {build.pk, other.pk}
    assert AuditEvent.objects.filter(action="approve", actor_label="mod@example.org (moderator)").count() == 2


def test_a_moderator_cannot_edit_plugins_metadata_or_the_state(moderator_client, gallery):
    change = reverse("admin:gallery_gallery_change", args=[gallery.pk])
    page = moderator_client.get(change).content.decode()
    for field in ("plugins", "metadata", "moderation_state", "title"):
        assert f'name="{field}"' not in page
    response = moderator_client.post(change, {"plugins": '["datasette-cluster-map"]', "moderation_state": "pending"})
    assert response.status_code == 403
    gallery.refresh_from_db()
    assert (gallery.plugins, gallery.moderation_state) == (["datasette-pretty-json"], "approved")


def test_even_a_superuser_changes_the_state_only_through_the_actions(admin_client, gallery):
    page = admin_client.get(reverse("admin:gallery_gallery_change", args=[gallery.pk])).content.decode()
    assert 'name="moderation_state"' not in page
    assert 'value="take_down"' in page and 'value="reject"' in page  # the actions instead
    assert 'value="approve"' not in page  # already approved, nothing new to review


def test_the_gallery_page_buttons_call_the_services(moderator_client, pending, build):
    url = reverse("admin:gallery_gallery_moderate", args=[pending.pk])
    page = moderator_client.get(reverse("admin:gallery_gallery_change", args=[pending.pk])).content.decode()
    assert f'<input type="hidden" name="build" value="{build.pk}">' in page  # the version the page shows
    moderator_client.post(url, {"do": "approve", "build": build.pk})
    pending.refresh_from_db()
    assert pending.moderation_state == "approved"
    refused = moderator_client.post(url, {"do": "reject", "reason": ""}, follow=True)
    assert "Give a reason" in refused.content.decode()
    moderator_client.post(url, {"do": "take_down", "reason": "Doxxing."})
    pending.refresh_from_db()
    assert (pending.moderation_state, pending.moderation_reason) == ("taken_down", "Doxxing.")
    again = moderator_client.post(url, {"do": "approve", "build": build.pk}, follow=True)
    assert "no version to approve" in again.content.decode()


def test_a_moderator_cannot_delete_but_an_admin_leaves_a_tombstone(moderator_client, admin_client, gallery):
    url = reverse("admin:gallery_gallery_moderate", args=[gallery.pk])
    moderator_client.post(url, {"do": "delete"})
    gallery.refresh_from_db()
    assert gallery.moderation_state == "approved"
    admin_client.post(url, {"do": "delete"})
    gallery.refresh_from_db()
    assert gallery.moderation_state == "deleted"


def test_trusting_the_publisher_from_the_queue(moderator_client, pending, publisher):
    Gallery.objects.filter(pk=pending.pk).update(owner=publisher)
    moderator_client.post(QUEUE, {"action": "trust_publishers", ACTION_CHECKBOX_NAME: [pending.pk]})
    assert Publisher.objects.get(user=publisher).trusted


def test_the_audit_log_is_readable_but_not_editable(moderator_client, admin_client, gallery):
    from gallery.services import audit

    event = audit.audit("approve", gallery=gallery, reason="fine")
    for client in (moderator_client, admin_client):
        listing = client.get(reverse("admin:gallery_auditevent_changelist"))
        assert listing.status_code == 200 and gallery.pk in listing.content.decode()
        assert client.post(reverse("admin:gallery_auditevent_change", args=[event.pk]), {"reason": "x"}).status_code == 403
        assert client.post(reverse("admin:gallery_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).reason == "fine"


def test_the_moderator_command_grants_and_removes_the_role(stranger, client):
    from django.core.management import CommandError, call_command

    call_command("moderator", stranger.email)
    client.force_login(stranger)
    assert client.get(QUEUE).status_code == 200
    call_command("moderator", stranger.email, "--remove")
    stranger.refresh_from_db()
    assert not stranger.is_staff and not stranger.groups.exists()
    with pytest.raises(CommandError, match="signs up first"):
        call_command("moderator", "nobody@example.org")


def test_a_reported_gallery_joins_the_queue_until_a_moderator_decides(moderator_client, gallery, build):
    from gallery.services import reports

    assert gallery.title not in moderator_client.get(QUEUE).content.decode()
    reports.record_report(gallery, reason="personal_data", details="Real emails", email="", reporter_key="k1")
    assert gallery.title in moderator_client.get(QUEUE).content.decode()
    moderator_client.post(reverse("admin:gallery_gallery_moderate", args=[gallery.pk]), {"do": "approve", "build": build.pk})
    assert gallery.title not in moderator_client.get(QUEUE).content.decode()  # kept up: reports reviewed
    assert AuditEvent.objects.get(gallery_id=gallery.pk, action="approve").details["reports_reviewed"] is True
    reports.record_report(gallery, reason="spam", details="", email="", reporter_key="k2")
    assert gallery.title in moderator_client.get(QUEUE).content.decode()  # a newer report
