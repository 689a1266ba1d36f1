"""Moderation actions in the admin call the services."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from gallery.models import Build, BuildState, Gallery

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:gallery_gallery_changelist")


def act(admin_client, action: str, gallery: Gallery, **extra: str):
    return admin_client.post(
        CHANGELIST, {"action": action, ACTION_CHECKBOX_NAME: [gallery.pk], **extra}
    )


def test_a_moderator_can_approve_a_pending_gallery(admin_client, gallery, build):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state="pending")
    response = act(admin_client, "approve_galleries", gallery)
    assert response.status_code == 302
    gallery.refresh_from_db()
    assert gallery.moderation_state == "approved"


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
