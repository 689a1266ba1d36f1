"""Approval is per build (issue 18): every public address serves only a build a moderator approved,
or that a trusted publisher or the operator published; a moderator approves the build they
reviewed; rebuilds never publish what nobody reviewed; one build at a time per gallery, rate
limits and quotas bound what a publisher can make the server build.

The content origin, oEmbed, the embed panel and the app's pages are driven through Django's test
client; the browser test of the same rule is tests/e2e/test_unapproved_builds_in_browser.py.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery.content.pages import killswitch_source
from gallery.models import FINAL_STATES, Approval, AuditEvent, Build, BuildReview, BuildState, Gallery, Publisher
from gallery.services import galleries, moderation, publishing, quotas

pytestmark = pytest.mark.django_db


def pinned_host(gallery: Gallery, build: Build) -> str:
    return f"{gallery.id}--{build.id}.localhost:8000"


def live_host(gallery: Gallery) -> str:
    return f"{gallery.id}.localhost:8000"


@pytest.fixture
def waiting(gallery: Gallery, build: Build, make_build, make_bundle) -> Build:
    """A new version of the approved ``gallery`` that finished building and waits for review, every file stored."""
    new = make_build()
    make_bundle(new)
    return new


def assert_unserved(client, gallery: Gallery, build: Build) -> None:
    """No public address serves ``build``: its pinned origin is unknown (kill switch), no download, no oEmbed."""
    host = pinned_host(gallery, build)
    for path in ("/", "/chinook/Album", f"/_build/{build.id}/data/chinook.db"):
        response = client.get(path, HTTP_HOST=host)
        assert response.status_code == 404, path
        assert b"no published version at this address" in response.content
        assert b"SQLite format 3" not in response.content
    assert client.get("/sw.js", HTTP_HOST=host).content == killswitch_source()
    assert client.get(f"/_download/{build.id}.zip", HTTP_HOST=live_host(gallery)).status_code == 404
    assert client.get(reverse("gallery:oembed"), {"url": gallery.pinned_url(build.id)}).status_code == 404
    pasted = client.get(
        reverse("gallery:embed-code", args=[gallery.id]), {"show": "url", "url": gallery.pinned_url(build.id)}
    )
    assert pasted.status_code == 400 and "does not exist" in pasted.json()["error"]


# --- Only reviewed builds are served ---------------------------------------------------------


def test_an_untrusted_publishers_new_version_is_on_no_public_address_until_a_moderator_approves_it(
    client, bundle, gallery, build, waiting
):
    assert_unserved(client, gallery, waiting)
    live = client.get("/", HTTP_HOST=live_host(gallery))
    assert f"booting {build.id}".encode() in live.getvalue()  # the approved version stays live
    assert waiting.id not in client.get(reverse("gallery:detail", args=[gallery.id])).content.decode()

    moderation.approve(gallery, build=waiting.id)

    assert f"booting {waiting.id}".encode() in client.get("/", HTTP_HOST=pinned_host(gallery, waiting)).getvalue()
    assert f"booting {waiting.id}".encode() in client.get("/", HTTP_HOST=live_host(gallery)).getvalue()
    assert client.get(f"/_download/{waiting.id}.zip", HTTP_HOST=live_host(gallery)).status_code == 200
    assert client.get(reverse("gallery:oembed"), {"url": gallery.pinned_url(waiting.id)}).status_code == 200


def test_approving_version_b_of_a_pending_gallery_leaves_version_a_unreviewed_and_unserved(
    client, gallery, make_build, make_bundle
):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    version_a, version_b = make_build(), make_build()
    make_bundle(version_a)
    make_bundle(version_b)
    assert moderation.build_to_review(gallery) == version_b

    moderation.approve(gallery, build=version_b.id)

    gallery.refresh_from_db()
    version_a.refresh_from_db()
    version_b.refresh_from_db()
    assert (gallery.moderation_state, gallery.live_build_id) == (Gallery.ModerationState.APPROVED, version_b.id)
    assert (version_b.review, version_b.approval) == (BuildReview.APPROVED, Approval.MODERATOR)
    assert version_a.review == BuildReview.PENDING
    assert_unserved(client, gallery, version_a)
    event = AuditEvent.objects.get(gallery_id=gallery.id, action=AuditEvent.Action.APPROVE)
    assert event.build_id == version_b.id


def test_approval_is_refused_when_a_newer_version_arrived_after_the_page_was_drawn(gallery, build, waiting, make_build):
    shown = moderation.build_to_review(gallery)
    assert shown == waiting
    newer = make_build()  # the publisher's next upload finishes while the moderator looks
    with pytest.raises(moderation.NewerVersion, match="A newer version .* arrived since this page was drawn"):
        moderation.approve(gallery, build=shown.id)
    for each in (waiting, newer):
        each.refresh_from_db()
        assert each.review == BuildReview.PENDING
    gallery.refresh_from_db()
    assert gallery.live_build_id == build.id
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.APPROVE).exists()


def test_a_build_still_running_when_the_moderator_approves_waits_for_its_own_review_when_it_finishes(
    client, gallery, make_build, make_bundle
):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    reviewed = make_build()
    make_bundle(reviewed)
    running = make_build(state=BuildState.BUNDLING)
    moderation.approve(gallery, build=reviewed.id)

    make_bundle(running)
    assert publishing.finish_build(running) is False  # not live: nobody reviewed it
    running.set_state(BuildState.READY)  # as the worker does once finish_build returned
    gallery.refresh_from_db()
    running.refresh_from_db()
    assert gallery.live_build_id == reviewed.id and running.review == BuildReview.PENDING
    assert_unserved(client, gallery, running)
    assert moderation.build_to_review(gallery) == running  # it is the next thing in the queue


def test_a_pending_gallery_with_nothing_built_cannot_be_approved(gallery, make_build):
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    queued = make_build(state=BuildState.QUEUED)
    with pytest.raises(moderation.InvalidTransition, match="no version to approve"):
        moderation.approve(gallery, build=queued.id)
    gallery.refresh_from_db()
    assert gallery.moderation_state == Gallery.ModerationState.PENDING


# --- Rebuilds and settings changes never publish unreviewed changes ---------------------------


def test_a_moderators_rebuild_builds_the_live_builds_source_with_its_approved_settings(
    gallery, build, make_build, sent_builds, django_capture_on_commit_callbacks, admin_user
):
    # The publisher edited the settings and uploaded a new file; a moderator saw neither.
    galleries.update_gallery(
        gallery, title="Renamed", description="", visibility="listed", plugins=[], metadata_text="title: Unreviewed"
    )
    unreviewed = make_build()
    with django_capture_on_commit_callbacks(execute=True):
        rebuilt = publishing.rebuild(gallery, by=admin_user)
    assert (rebuilt.source_key, rebuilt.source_sha256) == (build.source_key, build.source_sha256)
    assert rebuilt.source_key != unreviewed.source_key
    assert rebuilt.bundle_settings == build.bundle_settings
    assert rebuilt.title == "Chinook" and rebuilt.plugins == ["datasette-pretty-json"] and rebuilt.metadata == {}
    assert (rebuilt.review, rebuilt.approval, rebuilt.reviewed_by) == (BuildReview.APPROVED, Approval.REBUILD, admin_user)
    assert sent_builds == [rebuilt.id]
    assert publishing.finish_build(rebuilt) is True  # the same approved content goes live again


def test_a_publishers_settings_change_on_an_approved_gallery_waits_for_review_unless_trusted(
    client, owned_gallery, build, bundle, make_bundle, publisher
):
    assert galleries.update_gallery(
        owned_gallery, title="Buy pills", description="", visibility="listed", plugins=[], metadata_text="",
        by=publisher,
    )  # fmt: skip
    edited = publishing.rebuild(owned_gallery, by=publisher, as_publisher=True)
    assert edited.review == BuildReview.PENDING and edited.title == "Buy pills"
    edited.set_state(BuildState.UPLOADING)
    make_bundle(edited)
    assert publishing.finish_build(edited) is False
    owned_gallery.refresh_from_db()
    assert owned_gallery.live_build_id == build.id
    page = client.get(reverse("gallery:detail", args=[owned_gallery.id])).content.decode()
    assert "Buy pills" not in page and "<h1>Chinook</h1>" in page
    Build.objects.filter(pk=edited.pk).update(state=BuildState.FAILED)  # let the next build start

    Publisher.objects.create(user=publisher, trusted=True)
    trusted = publishing.rebuild(owned_gallery, by=publisher, as_publisher=True)
    assert (trusted.review, trusted.approval) == (BuildReview.APPROVED, Approval.TRUSTED)


def test_the_edit_page_says_a_change_waits_for_a_moderator(client, owned_gallery, publisher):
    client.force_login(publisher)
    data = {"title": "Chinook 2", "description": "", "plugins": [], "visibility": "listed",
            "datasette_version": owned_gallery.datasette_version, "metadata": ""}  # fmt: skip
    page = client.post(reverse("gallery:mine-edit", args=[owned_gallery.id]), data, follow=True).content.decode()
    assert "a moderator approves that build first" in page


# --- Rejection and takedown cover every build and every preview --------------------------------


def test_a_rejection_covers_a_build_still_running_which_is_cancelled_and_never_served(
    gallery, build, make_build, make_bundle, storage, django_capture_on_commit_callbacks
):
    running = make_build(state=BuildState.BUNDLING)
    with django_capture_on_commit_callbacks(execute=True):
        moderation.reject(gallery, "Personal data in the customers table.")
    running.refresh_from_db()
    build.refresh_from_db()
    assert running.state == BuildState.CANCELLED and "the gallery was rejected" in running.failure_reason
    assert build.review == running.review == BuildReview.REJECTED
    # A worker that did not see the cancellation in time finishes: nothing of it stays.
    make_bundle(running)
    with pytest.raises(ValueError, match="rejected during the build"):
        publishing.finish_build(running)
    assert list(storage.keys(f"builds/{running.id}/")) == []


@pytest.mark.parametrize("act", ["take_down", "reject"])
def test_a_moderator_can_end_a_pending_gallery_and_its_previews(client, gallery, make_build, make_bundle, act):
    from gallery.content.preview import preview_url

    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    waiting = make_build()
    make_bundle(waiting)
    host = preview_url(waiting).split("//", 1)[1].rstrip("/")
    assert client.get("/", HTTP_HOST=host).status_code == 200
    getattr(moderation, act)(gallery, "Spam.")
    assert client.get("/", HTTP_HOST=host).status_code == 410
    assert client.get("/sw.js", HTTP_HOST=host).content == killswitch_source()


# --- One build at a time, rate limits, quotas by address ----------------------------------------


@pytest.fixture
def owner_client(client, owned_gallery, publisher):
    """A client signed in as ``publisher``, the owner of ``gallery`` (``owned_gallery``)."""
    client.force_login(publisher)
    return client


def finish_builds(gallery: Gallery) -> None:
    gallery.builds.exclude(state__in=FINAL_STATES).update(state=BuildState.FAILED)


def test_a_gallery_builds_one_version_at_a_time(owner_client, gallery, sqlite_bytes):
    rebuild = reverse("gallery:mine-rebuild", args=[gallery.id])
    new_version = reverse("gallery:mine-new-version", args=[gallery.id])
    assert owner_client.post(rebuild).status_code == 302
    refused = owner_client.post(rebuild, follow=True).content.decode()
    assert "has a build that has not finished yet" in refused
    upload = owner_client.post(new_version, {"file": SimpleUploadedFile("v2.db", sqlite_bytes)})
    assert upload.status_code == 400 and "has a build that has not finished yet" in upload.content.decode()
    assert gallery.builds.count() == 2
    with pytest.raises(publishing.BuildInProgress):
        publishing.rebuild(gallery)  # a moderator's rebuild waits too


def test_rebuilds_and_new_versions_are_rate_limited_per_publisher(owner_client, gallery, sqlite_bytes, settings):
    settings.BUILD_RATE_LIMIT = "2/h"
    rebuild = reverse("gallery:mine-rebuild", args=[gallery.id])
    new_version = reverse("gallery:mine-new-version", args=[gallery.id])
    assert owner_client.post(rebuild).status_code == 302
    finish_builds(gallery)
    assert owner_client.post(new_version, {"file": SimpleUploadedFile("v2.db", sqlite_bytes)}).status_code == 302
    finish_builds(gallery)
    # The same publisher from another address is the same publisher.
    refused = owner_client.post(rebuild, REMOTE_ADDR="198.51.100.9", follow=True).content.decode()
    assert "Too many builds started: the limit is 2 per hour per publisher" in refused
    upload = owner_client.post(new_version, {"file": SimpleUploadedFile("v3.db", sqlite_bytes)})
    assert upload.status_code == 429
    assert gallery.builds.count() == 3


def test_rebuilds_are_rate_limited_per_address_whatever_the_account(
    client, owned_gallery, other_gallery, publisher, make_user, settings
):
    settings.BUILD_RATE_LIMIT_PER_ADDRESS = "1/h"
    bob = make_user("bob")
    Gallery.objects.filter(pk=other_gallery.pk).update(owner=bob)
    Build.objects.create(gallery=other_gallery, state=BuildState.READY, source_key="uploads/o/source.db",
                         source_sha256="2" * 64, source_bytes=1)  # fmt: skip
    client.force_login(publisher)
    assert client.post(reverse("gallery:mine-rebuild", args=[owned_gallery.id])).status_code == 302
    client.force_login(bob)
    refused = client.post(reverse("gallery:mine-rebuild", args=[other_gallery.id]), follow=True).content.decode()
    assert "Too many builds started" in refused
    assert other_gallery.builds.count() == 1


def test_anonymous_galleries_count_against_quotas_by_address(client, upload_data, settings):
    settings.PUBLISHER_MAX_GALLERIES = 2
    publish = reverse("gallery:publish")
    for _ in range(2):
        assert client.post(publish, upload_data(), REMOTE_ADDR="203.0.113.5").status_code == 302
        finish_builds_of_all()
    refused = client.post(publish, upload_data(), REMOTE_ADDR="203.0.113.5")
    assert refused.status_code == 400
    assert "Your address (galleries published without an account) has 2 galleries" in refused.content.decode()
    assert client.post(publish, upload_data(), REMOTE_ADDR="203.0.113.6").status_code == 302
    assert Gallery.objects.count() == 3


def test_anonymous_builds_at_once_are_bounded_per_address(upload_data, settings, storage):
    settings.PUBLISHER_MAX_CONCURRENT_BUILDS = 1
    def data() -> SimpleUploadedFile:
        return upload_data()["file"]

    galleries.accept_upload(upload=data(), filename="a.db", title="A", plugins=[], uploader_ip="203.0.113.5")
    with pytest.raises(quotas.QuotaExceeded, match="already has 1 builds queued or running"):
        galleries.accept_upload(upload=data(), filename="b.db", title="B", plugins=[], uploader_ip="203.0.113.5")
    assert Gallery.objects.count() == 1
    assert len(list(storage.keys("uploads/"))) == 1  # the refused file was not kept
    # The operator's command counts against nobody's quota.
    galleries.accept_upload(upload=data(), filename="c.db", title="C", plugins=[], by_operator=True)


def finish_builds_of_all() -> None:
    Build.objects.exclude(state__in=FINAL_STATES).update(state=BuildState.FAILED)
