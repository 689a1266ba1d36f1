"""Publishers: ownership of galleries, My galleries, management links, quotas, new versions, edits, view counts."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from builder.metadata import MAX_METADATA_DEPTH
from gallery.logs import redact_secrets
from gallery.models import Approval, AuditEvent, Build, BuildReview, BuildState, Gallery, Publisher
from gallery.services import galleries, moderation, ownership, publishing, quotas, uploads
from gallery.view_counts import flush_view_counts
from gallery.views import mine as publisher_views
from tests.plugins.users import PASSWORD
from tests.support.hostile_metadata import PLUGIN, alias_bomb, deep_json

pytestmark = pytest.mark.django_db

@pytest.fixture
def db_file(sqlite_bytes: bytes) -> Callable[[str], SimpleUploadedFile]:
    """``db_file(name="v2.db")``: a fresh uploaded-file object of a valid SQLite database."""
    return lambda name="v2.db": SimpleUploadedFile(name, sqlite_bytes)


def _pages(gallery_id: str) -> list[tuple[str, str]]:
    return [
        ("get", reverse("gallery:mine-gallery", args=[gallery_id])),
        ("get", reverse("gallery:mine-edit", args=[gallery_id])),
        ("post", reverse("gallery:mine-edit", args=[gallery_id])),
        ("post", reverse("gallery:mine-new-version", args=[gallery_id])),
        ("post", reverse("gallery:mine-rebuild", args=[gallery_id])),
        ("get", reverse("gallery:mine-delete", args=[gallery_id])),
        ("post", reverse("gallery:mine-delete", args=[gallery_id])),
    ]


@pytest.mark.parametrize("index", range(7), ids=[f"{m} {p.split('/')[-2] or 'page'}" for m, p in _pages("g")])
@pytest.mark.parametrize("who", ["stranger", "anonymous"])
def test_someone_elses_gallery_is_404_everywhere_and_stays_unchanged(client, owned_gallery, stranger, index, who):
    if who == "stranger":
        client.force_login(stranger)
    method, path = _pages(owned_gallery.pk)[index]
    response = getattr(client, method)(path, {"title": "Hijacked", "visibility": "listed"} if method == "post" else {})
    assert response.status_code == 404
    owned_gallery.refresh_from_db()
    assert owned_gallery.title == "Chinook" and owned_gallery.moderation_state == "approved"
    assert owned_gallery.builds.count() == 1


def test_my_galleries_lists_only_mine_and_not_deleted_with_state_reason_and_views(
    client, owned_gallery, publisher, stranger, other_gallery
):
    Gallery.objects.filter(pk=other_gallery.pk).update(owner=stranger)
    rejected = Gallery.objects.create(
        title="Rejected one", owner=publisher, moderation_state="rejected", moderation_reason="Remove the emails"
    )
    Gallery.objects.create(title="Gone one", owner=publisher, moderation_state="deleted")
    Gallery.objects.filter(pk=owned_gallery.pk).update(view_count=7)
    client.force_login(publisher)
    page = client.get(reverse("gallery:mine")).content.decode()
    assert "Chinook" in page and rejected.title in page
    assert "Remove the emails" in page
    assert "opened 7 times" in page
    assert "Other" not in page and "Gone one" not in page


def test_my_galleries_sends_someone_signed_out_to_log_in(client, db):
    response = client.get(reverse("gallery:mine"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_the_owner_sees_builds_with_links_to_their_logs(client, owned_gallery, build, publisher):
    client.force_login(publisher)
    page = client.get(reverse("gallery:mine-gallery", args=[owned_gallery.pk])).content.decode()
    assert build.get_absolute_url() in page
    assert ">live</strong>" in page  # approved and public: its build is live


# --- Publishing signed in or anonymously -------------------------------------------------------


def test_a_signed_in_upload_belongs_to_the_publisher_and_has_no_management_link(client, publisher, upload_data):
    client.force_login(publisher)
    response = client.post(reverse("gallery:publish"), upload_data(), REMOTE_ADDR="203.0.113.9")
    build = Build.objects.get()
    assert response.url == build.get_absolute_url()
    assert build.gallery.owner == publisher
    assert build.gallery.uploader_ip_hash and "203.0.113.9" not in build.gallery.uploader_ip_hash
    assert build.gallery.management_key_hash == ""
    assert "management-link" not in client.get(response.url).content.decode()


def _anonymous_upload(client, upload_data) -> tuple[Build, str]:
    """Publish anonymously; return the build and the management link shown on its page."""
    response = client.post(reverse("gallery:publish"), upload_data())
    build = Build.objects.get()
    page = client.get(response.url).content.decode()
    (link,) = re.findall(r'href="(http://testserver/manage/[^"]+)"', page)
    return build, link.removeprefix("http://testserver")


def test_an_anonymous_upload_shows_its_management_link_once(client, upload_data):
    build, link = _anonymous_upload(client, upload_data)
    assert build.gallery.owner is None
    assert link.startswith(f"/manage/{build.gallery_id}/")
    assert "Keep this private link" not in client.get(build.get_absolute_url()).content.decode()
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in build.gallery.management_key_hash
    # The uploader's own browser manages it already.
    assert client.get(reverse("gallery:mine-gallery", args=[build.gallery_id])).status_code == 200


def test_the_management_link_lets_another_browser_manage_and_a_wrong_one_does_not(client, upload_data):
    build, link = _anonymous_upload(client, upload_data)
    other = Client()
    manage = reverse("gallery:mine-gallery", args=[build.gallery_id])
    assert other.get(manage).status_code == 404
    assert other.get(f"/manage/{build.gallery_id}/not-the-token/").status_code == 404
    assert other.get(manage).status_code == 404
    response = other.get(link)
    assert response.status_code == 302 and response.url == manage
    assert other.get(manage).status_code == 200


def test_claiming_needs_the_current_token_and_an_unowned_gallery(owned_gallery, gallery, publisher, stranger):
    Gallery.objects.filter(pk=gallery.pk).update(owner=None)
    gallery.refresh_from_db()
    token = ownership.new_management_token(gallery)
    with pytest.raises(ownership.ClaimRefused):
        ownership.claim_gallery(gallery, stranger, ownership.management_token_hash("wrong"))
    with pytest.raises(ownership.ClaimRefused):
        ownership.claim_gallery(gallery, stranger, "")
    ownership.new_management_token(gallery)  # a new token replaces the old one
    with pytest.raises(ownership.ClaimRefused):
        ownership.claim_gallery(gallery, stranger, ownership.management_token_hash(token))
    token = ownership.new_management_token(gallery)
    ownership.claim_gallery(gallery, publisher, ownership.management_token_hash(token))
    with pytest.raises(ownership.ClaimRefused):
        ownership.claim_gallery(gallery, stranger, ownership.management_token_hash(token))
    assert Gallery.objects.get(pk=gallery.pk).owner == publisher


def test_with_anonymous_uploads_off_the_form_asks_to_log_in(client, settings, upload_data, publisher):
    settings.ANONYMOUS_UPLOADS = False
    page = client.get(reverse("gallery:publish")).content.decode()
    assert "log-in-to-publish" in page and 'id="publish-form"' not in page
    response = client.post(reverse("gallery:publish"), upload_data(), HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert "Log in or sign up to publish" in response.json()["errors"]["__all__"][0]
    assert not Gallery.objects.exists()
    client.force_login(publisher)
    assert client.post(reverse("gallery:publish"), upload_data()).status_code == 302
    assert Gallery.objects.get().owner == publisher


# --- Quotas -------------------------------------------------------------------------------------


def test_the_gallery_quota_refuses_one_more_with_a_clear_message(client, settings, publisher, upload_data):
    settings.PUBLISHER_MAX_GALLERIES = 1
    client.force_login(publisher)
    assert client.post(reverse("gallery:publish"), upload_data()).status_code == 302
    Build.objects.update(state=BuildState.READY)
    response = client.post(reverse("gallery:publish"), upload_data(), HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "the most one publisher may keep (1)" in response.json()["errors"]["__all__"][0]
    assert Gallery.objects.count() == 1
    # A deleted gallery no longer counts.
    moderation.delete_gallery(Gallery.objects.get(), by=publisher)
    assert client.post(reverse("gallery:publish"), upload_data()).status_code == 302


def test_the_concurrent_build_quota_covers_uploads_new_versions_and_rebuilds(
    client, settings, publisher, owned_gallery, make_build, db_file, upload_data
):
    settings.PUBLISHER_MAX_CONCURRENT_BUILDS = 2
    # Two of the publisher's other galleries are building (each gallery builds one version at a time).
    for state in (BuildState.QUEUED, BuildState.BUNDLING):
        busy = Gallery.objects.create(title=f"Busy {state}", owner=publisher, moderation_state="approved")
        make_build(state=state, of=busy)
    message = "2 builds queued or running"
    with pytest.raises(quotas.QuotaExceeded, match=message):
        galleries.accept_upload(upload=db_file(), filename="x.db", title="Third", plugins=[], owner=publisher)
    with pytest.raises(quotas.QuotaExceeded, match=message):
        galleries.upload_new_version(owned_gallery, upload=db_file(), filename="x.db", by=publisher)
    with pytest.raises(quotas.QuotaExceeded, match=message):
        publishing.rebuild(owned_gallery, by=publisher, as_publisher=True)
    client.force_login(publisher)
    response = client.post(reverse("gallery:mine-rebuild", args=[owned_gallery.pk]), follow=True)
    assert message in response.content.decode()
    assert owned_gallery.builds.count() == 1
    # A moderator's rebuild is not the publisher's: no quota.
    publishing.rebuild(owned_gallery, by=None)


def test_the_storage_quota_counts_each_upload_once_and_the_bundles(settings, publisher, owned_gallery, build, db_file):
    Build.objects.filter(pk=build.pk).update(source_bytes=1000, bundle_bytes=500)
    publishing.rebuild(owned_gallery)  # shares the upload
    Build.objects.filter(gallery=owned_gallery).exclude(pk=build.pk).update(state=BuildState.READY, bundle_bytes=500)
    assert quotas.stored_bytes(publisher) == 1000 + 500 + 500
    size = len(db_file().read())
    settings.PUBLISHER_MAX_STORED_BYTES = 2000 + size - 1
    with pytest.raises(quotas.QuotaExceeded, match="over your"):
        galleries.upload_new_version(owned_gallery, upload=db_file(), filename="v2.db", by=publisher)
    settings.PUBLISHER_MAX_STORED_BYTES = 2000 + size
    galleries.upload_new_version(owned_gallery, upload=db_file(), filename="v2.db", by=publisher)


def test_a_refused_upload_leaves_nothing_in_storage(settings, publisher, owned_gallery, db_file, storage):
    settings.PUBLISHER_MAX_STORED_BYTES = 1
    with pytest.raises(quotas.QuotaExceeded):
        galleries.upload_new_version(owned_gallery, upload=db_file(), filename="v2.db", by=publisher)
    uploads = storage.root / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_anonymous_uploads_have_no_publisher_quota(settings, db_file, db):
    settings.PUBLISHER_MAX_GALLERIES = 1
    settings.PUBLISHER_MAX_CONCURRENT_BUILDS = 1
    for title in ("One", "Two"):
        galleries.accept_upload(upload=db_file(), filename="x.db", title=title, plugins=[])
    assert Gallery.objects.count() == 2


# --- New versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "who", "waits"),
    [
        ("approved", "publisher", True),
        ("approved", "trusted", False),
        ("approved", "link holder", True),
        ("pending", "publisher", True),
        ("pending", "trusted", False),
        ("rejected", "publisher", True),
    ],
)
def test_a_new_version_waits_for_review_unless_its_publisher_is_trusted(
    owned_gallery, build, publisher, db_file, sent_builds, django_capture_on_commit_callbacks, state, who, waits
):
    Gallery.objects.filter(pk=owned_gallery.pk).update(moderation_state=state)
    owned_gallery.refresh_from_db()
    if who == "trusted":
        Publisher.objects.create(user=publisher, trusted=True)
    by = None if who == "link holder" else publisher
    with django_capture_on_commit_callbacks(execute=True):
        new = galleries.upload_new_version(
            owned_gallery, upload=db_file("renamed.sqlite"), filename="renamed.sqlite", by=by
        )
    assert (new.review == BuildReview.PENDING) is waits
    assert new.approval == ("" if waits else Approval.TRUSTED)
    assert new.state == BuildState.QUEUED and sent_builds == [new.pk]
    assert new.source_key == f"uploads/{new.pk}/source.db"
    owned_gallery.refresh_from_db()
    assert owned_gallery.live_build_id == build.pk  # the live build stays live meanwhile
    assert owned_gallery.database_name == "chinook"  # URLs stay the same
    event = AuditEvent.objects.get(action="new_version", build_id=new.pk)
    assert event.actor == by and event.details["approved"] is not waits


@pytest.mark.parametrize("state", ["taken_down", "deleted"])
def test_a_gallery_taken_down_or_deleted_takes_no_new_version_or_edit(owned_gallery, publisher, db_file, state):
    Gallery.objects.filter(pk=owned_gallery.pk).update(moderation_state=state)
    owned_gallery.refresh_from_db()
    with pytest.raises(uploads.UploadRejected):
        galleries.upload_new_version(owned_gallery, upload=db_file(), filename="v2.db", by=publisher)
    with pytest.raises(uploads.UploadRejected):
        galleries.update_gallery(
            owned_gallery, title="New", description="", visibility="listed", plugins=[], metadata_text="", by=publisher
        )


def test_uploading_a_new_version_through_the_page(client, owned_gallery, publisher, db_file):
    client.force_login(publisher)
    url = reverse("gallery:mine-new-version", args=[owned_gallery.pk])
    response = client.post(url, {"file": SimpleUploadedFile("v2.txt", b"a,b\n")})
    assert response.status_code == 400
    assert "upload a SQLite database (.db, .sqlite, .sqlite3)" in response.content.decode()
    response = client.post(url, {"file": db_file()})
    new = owned_gallery.builds.latest("created_at")
    assert response.url == new.get_absolute_url()


def test_a_publisher_rebuild_of_an_approved_gallery_waits_for_review(client, owned_gallery, publisher):
    client.force_login(publisher)
    response = client.post(reverse("gallery:mine-rebuild", args=[owned_gallery.pk]))
    new = owned_gallery.builds.latest("created_at")
    assert response.url == new.get_absolute_url()
    assert new.review == BuildReview.PENDING


# --- Editing and deleting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "rebuild"),
    [
        ({"visibility": "unlisted"}, False),
        ({"plugins": []}, True),
        ({"metadata": "license: CC BY 4.0"}, True),
        ({"datasette_version": "1.0a41", "plugins": []}, True),
        ({"title": "Chinook, renamed"}, True),
        ({}, False),
    ],
)
def test_editing_says_when_a_rebuild_is_needed(client, owned_gallery, publisher, changes, rebuild):
    client.force_login(publisher)
    data = {
        "title": "Chinook",
        "description": "Music store",
        "plugins": ["datasette-pretty-json"],
        "visibility": "listed",
        "datasette_version": owned_gallery.datasette_version,
        "metadata": "",
        **changes,
    }
    response = client.post(reverse("gallery:mine-edit", args=[owned_gallery.pk]), data, follow=True)
    page = response.content.decode()
    assert ("rebuild it" in page) is rebuild
    owned_gallery.refresh_from_db()
    assert owned_gallery.visibility == data["visibility"] and owned_gallery.title == data["title"]
    assert AuditEvent.objects.filter(action="edit", gallery_id=owned_gallery.pk).exists() is bool(changes)


def test_editing_refuses_bad_metadata_and_keeps_the_old_settings(client, owned_gallery, publisher):
    client.force_login(publisher)
    response = client.post(
        reverse("gallery:mine-edit", args=[owned_gallery.pk]),
        {"title": "New", "visibility": "listed", "datasette_version": owned_gallery.datasette_version,
         "metadata": "databases:\n  not-this-one: {}\n"},
    )  # fmt: skip
    assert response.status_code == 400
    owned_gallery.refresh_from_db()
    assert owned_gallery.title == "Chinook"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param(alias_bomb(), "YAML anchors and aliases are not accepted", id="alias bomb"),
        pytest.param(deep_json(), f"more than {MAX_METADATA_DEPTH} levels deep", id="nested 30000 deep"),
    ],
)
def test_editing_refuses_metadata_that_would_cost_minutes_with_a_message_and_changes_nothing(
    client, owned_gallery, publisher, metadata, message
):
    client.force_login(publisher)
    response = client.post(
        reverse("gallery:mine-edit", args=[owned_gallery.pk]),
        {"title": "New", "visibility": "listed", "datasette_version": owned_gallery.datasette_version,
         "plugins": [PLUGIN], "metadata": metadata},
    )  # fmt: skip
    assert response.status_code == 400
    assert message in response.context["form"].errors["metadata"][0]
    assert message in response.content.decode()
    owned_gallery.refresh_from_db()
    kept = ("Chinook", ["datasette-pretty-json"], {})
    assert (owned_gallery.title, owned_gallery.plugins, owned_gallery.metadata) == kept
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EDIT).exists()
    assert Build.objects.filter(gallery=owned_gallery).count() == 1


def test_deleting_asks_first_then_leaves_a_tombstone(client, owned_gallery, publisher):
    client.force_login(publisher)
    url = reverse("gallery:mine-delete", args=[owned_gallery.pk])
    assert "cannot be undone" in client.get(url).content.decode()
    assert Gallery.objects.get(pk=owned_gallery.pk).moderation_state == "approved"
    response = client.post(url)
    assert response.url == reverse("gallery:mine")
    assert Gallery.objects.get(pk=owned_gallery.pk).moderation_state == "deleted"
    assert AuditEvent.objects.filter(action="delete", gallery_id=owned_gallery.pk, actor=publisher).exists()
    assert client.get(reverse("gallery:mine-gallery", args=[owned_gallery.pk])).status_code == 404
    assert "Chinook" not in client.get(reverse("gallery:mine")).content.decode()


# --- View counts ----------------------------------------------------------------------------------


def test_bootstrap_loads_of_the_public_origin_count_views(content_client, bundle, gallery, build):
    content_client.get("/")
    content_client.get("/chinook/album")
    content_client.head("/")
    content_client.get("/sw.js")
    flush_view_counts()  # what Celery beat does every VIEW_COUNT_FLUSH_INTERVAL seconds
    assert Gallery.objects.get(pk=gallery.pk).view_count == 2
    content_client.defaults["HTTP_HOST"] = f"{gallery.id}--{build.id}.localhost:8000"
    assert content_client.get("/").status_code == 200
    flush_view_counts()
    assert Gallery.objects.get(pk=gallery.pk).view_count == 2  # a pinned version does not count


def test_versions_awaiting_review_have_preview_links_and_say_where_they_stand(
    client, owned_gallery, build, publisher, make_build
):
    client.force_login(publisher)
    url = reverse("gallery:mine-gallery", args=[owned_gallery.pk])
    assert "pv-" not in client.get(url).content.decode()  # approved and live: nothing to preview
    waiting = make_build(state=BuildState.READY)  # a new version waiting for review
    page = client.get(url).content.decode()
    assert re.search(rf'class="preview" href="http://pv-{waiting.pk}-[^"]+"', page)
    assert "waits for a moderator before it goes live" in page
    assert f"pv-{build.pk}" not in page
    newest = make_build(state=BuildState.READY)  # replaces it before anyone reviewed it
    page = client.get(url).content.decode()
    assert "a newer version replaced it before review: it is never published" in page
    assert re.search(rf'class="preview" href="http://pv-{newest.pk}-[^"]+"', page)


def test_signing_up_after_an_anonymous_upload_claims_it_once_the_address_is_confirmed(client, upload_data, mailoutbox):
    build, _ = _anonymous_upload(client, upload_data)
    client.post(reverse("account_signup"), {"email": "new@example.org", "password1": PASSWORD, "password2": PASSWORD})
    assert Gallery.objects.get(pk=build.gallery_id).owner is None  # not before the address is confirmed
    (confirm,) = re.findall(r"http://testserver(/accounts/confirm-email/\S+)", mailoutbox[-1].body)
    client.post(confirm)
    assert Gallery.objects.get(pk=build.gallery_id).owner.email == "new@example.org"


# --- Claiming: opening a link changes no ownership; a confirmation POST does ------------------------


def _token(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


def _log_in(browser: Client, user) -> None:
    response = browser.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()


def test_a_signed_in_user_who_opens_a_link_keeps_the_gallery_unowned_until_they_confirm(
    client, upload_data, publisher
):
    build, link = _anonymous_upload(client, upload_data)
    victim = Client()
    victim.force_login(publisher)
    manage = reverse("gallery:mine-gallery", args=[build.gallery_id])
    response = victim.get(link)
    assert response.status_code == 302 and response.url == manage
    gallery = Gallery.objects.get(pk=build.gallery_id)
    assert gallery.owner is None and gallery.management_key_hash
    assert not AuditEvent.objects.filter(action="claim").exists()
    page = victim.get(manage).content.decode()
    assert f"Add this gallery to my account ({publisher.email})" in page
    assert f'action="{reverse("gallery:mine-claim", args=[gallery.pk])}"' in page
    assert client.get(manage).status_code == 200  # the uploader still manages it

    response = victim.post(reverse("gallery:mine-claim", args=[gallery.pk]))
    assert response.status_code == 302 and response.url == manage
    gallery.refresh_from_db()
    assert gallery.owner == publisher and gallery.management_key_hash == ""
    event = AuditEvent.objects.get(action="claim", gallery_id=gallery.pk)
    assert event.actor == publisher and event.details == {"how": "confirmed"}
    assert "is now in your account" in victim.get(manage).content.decode()
    # The link served its purpose: it no longer grants anything, and its holders lose the gallery.
    assert client.get(manage).status_code == 404
    assert Client().get(link).status_code == 404


def test_the_claim_button_is_csrf_checked(client, upload_data, publisher):
    build, link = _anonymous_upload(client, upload_data)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(publisher)
    browser.get(link)
    claim = reverse("gallery:mine-claim", args=[build.gallery_id])
    assert browser.post(claim).status_code == 403
    assert Gallery.objects.get(pk=build.gallery_id).owner is None
    page = browser.get(reverse("gallery:mine-gallery", args=[build.gallery_id])).content.decode()
    csrf = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[0]
    assert browser.post(claim, {"csrfmiddlewaretoken": csrf}).status_code == 302
    assert Gallery.objects.get(pk=build.gallery_id).owner == publisher


@pytest.mark.parametrize("who", ["a stranger without the link", "signed out with the link"])
def test_claiming_needs_a_signed_in_holder_of_the_link(client, upload_data, stranger, who):
    build, link = _anonymous_upload(client, upload_data)
    browser = Client()
    if who == "a stranger without the link":
        browser.force_login(stranger)
    else:
        browser.get(link)
    response = browser.post(reverse("gallery:mine-claim", args=[build.gallery_id]))
    if who == "a stranger without the link":
        assert response.status_code == 404
    else:
        assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    assert Gallery.objects.get(pk=build.gallery_id).owner is None
    assert not AuditEvent.objects.filter(action="claim").exists()


@pytest.mark.parametrize("how", ["log in", "sign up"])
def test_logging_in_or_signing_up_after_merely_opening_a_link_claims_nothing(
    client, upload_data, publisher, mailoutbox, how
):
    build, link = _anonymous_upload(client, upload_data)
    browser = Client()
    browser.get(link)
    if how == "log in":
        _log_in(browser, publisher)
        email = publisher.email
    else:
        email = "new@example.org"
        browser.post(reverse("account_signup"), {"email": email, "password1": PASSWORD, "password2": PASSWORD})
        (confirm,) = re.findall(r"http://testserver(/accounts/confirm-email/\S+)", mailoutbox[-1].body)
        browser.post(confirm)  # logs in (ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION)
    assert "_auth_user_id" in browser.session
    assert Gallery.objects.get(pk=build.gallery_id).owner is None
    assert not AuditEvent.objects.filter(action="claim").exists()
    # My galleries shows it apart, with the button; the button claims it.
    mine = browser.get(reverse("gallery:mine")).content.decode()
    assert "Not in your account" in mine and f"Add this gallery to my account ({email})" in mine
    browser.post(reverse("gallery:mine-claim", args=[build.gallery_id]))
    assert Gallery.objects.get(pk=build.gallery_id).owner.email == email


def test_logging_in_after_an_anonymous_upload_claims_it_and_not_a_link_opened_in_the_same_session(
    client, upload_data, publisher
):
    others, others_link = _anonymous_upload(Client(), upload_data)
    client.get(others_link)
    response = client.post(reverse("gallery:publish"), upload_data(title="Mine"))
    mine = Build.objects.exclude(pk=others.pk).get()
    client.get(response.url)  # the build page, which shows the link
    _log_in(client, publisher)
    assert Gallery.objects.get(pk=mine.gallery_id).owner == publisher
    event = AuditEvent.objects.get(action="claim")
    assert event.gallery_id == mine.gallery_id and event.details == {"how": "logged in after uploading it"}
    assert Gallery.objects.get(pk=others.gallery_id).owner is None
    assert client.get(reverse("gallery:mine-gallery", args=[others.gallery_id])).status_code == 200


# --- Sessions hold no management token ---------------------------------------------------------------


def _stored_sessions() -> str:
    """Every session in the session store (the ``django_session`` table), decoded, as one JSON text."""
    return json.dumps([session.get_decoded() for session in Session.objects.all()])


def test_no_session_holds_a_management_token_after_an_upload_the_build_page_a_link_or_a_claim(
    client, upload_data, publisher
):
    response = client.post(reverse("gallery:publish"), upload_data())
    build = Build.objects.get()
    assert Gallery.objects.get().management_key_hash == ""  # no token before the build page is drawn
    assert build.pk in _stored_sessions()  # the session knows it uploaded it
    page = client.get(response.url).content.decode()
    (link,) = re.findall(r'href="http://testserver(/manage/[^"]+)"', page)
    token = _token(link)
    assert ownership.management_token_matches(Gallery.objects.get(), token)
    stored = _stored_sessions()
    assert token not in stored
    assert ownership.management_token_hash(token) in stored  # the grant is the hash
    assert token not in client.get(response.url).content.decode()  # shown once

    other = Client()
    other.get(link)
    assert other.get(reverse("gallery:mine-gallery", args=[build.gallery_id])).status_code == 200
    assert token not in _stored_sessions()
    _log_in(other, publisher)
    other.post(reverse("gallery:mine-claim", args=[build.gallery_id]))
    assert Gallery.objects.get().owner == publisher
    assert token not in _stored_sessions()


def _old_format_session(browser: Client, grants: dict[str, str], links: dict[str, str]) -> None:
    """Store in ``browser``'s session what the app wrote before it hashed tokens: plain tokens and links."""
    session = browser.session
    session[publisher_views.OLD_SESSION_GRANTS] = grants
    session[publisher_views.OLD_SESSION_NEW_LINKS] = links
    session.save()


def test_a_session_from_before_hashing_keeps_managing_but_loses_its_plain_tokens(
    client, gallery, build, make_build, publisher
):
    Gallery.objects.filter(pk=gallery.pk).update(owner=None)
    opened_token = ownership.new_management_token(gallery)
    uploaded = Gallery.objects.create(title="Uploaded before", database_name="up")
    uploaded_build = make_build(state=BuildState.QUEUED, of=uploaded)
    uploaded_token = ownership.new_management_token(uploaded)
    _old_format_session(
        client,
        {gallery.pk: opened_token, uploaded.pk: uploaded_token},
        {uploaded_build.pk: f"http://testserver/manage/{uploaded.pk}/{uploaded_token}/"},
    )
    assert opened_token in _stored_sessions()

    assert client.get(reverse("gallery:mine-gallery", args=[gallery.pk])).status_code == 200
    stored = _stored_sessions()
    assert opened_token not in stored and uploaded_token not in stored
    # The upload's build page, not seen yet, shows a link once: a new one (the old one was never shown).
    page = client.get(uploaded_build.get_absolute_url()).content.decode()
    (link,) = re.findall(r'href="http://testserver(/manage/[^"]+)"', page)
    uploaded.refresh_from_db()
    assert ownership.management_token_matches(uploaded, _token(link))
    assert not ownership.management_token_matches(uploaded, uploaded_token)
    assert _token(link) not in _stored_sessions()
    # Logging in claims what this session uploaded, not the gallery whose link it opened.
    _log_in(client, publisher)
    assert Gallery.objects.get(pk=uploaded.pk).owner == publisher
    assert Gallery.objects.get(pk=gallery.pk).owner is None


# --- Django's log lines carry no management token ----------------------------------------------------


@pytest.fixture
def console_log() -> Iterator[io.StringIO]:
    """What the app's log handler (``console``, ``gallery.logs.logging_config``) writes while the test runs."""
    handler = logging.getHandlerByName("console")
    assert isinstance(handler, logging.StreamHandler)
    written = io.StringIO()
    stream = handler.setStream(written)
    try:
        yield written
    finally:
        handler.setStream(stream)


def test_no_log_line_names_a_management_token(client, upload_data, publisher, console_log):
    build, link = _anonymous_upload(client, upload_data)
    token = _token(link)
    browser = Client()
    assert browser.head(link).status_code == 405  # a link checker's HEAD: Django logs "Method Not Allowed: <path>"
    assert browser.post(link).status_code == 405
    browser.get(link)
    browser.force_login(publisher)
    browser.post(reverse("gallery:mine-claim", args=[build.gallery_id]))
    assert browser.get(link).status_code == 404  # a stale link: Django logs "Not Found: <path>"
    written = console_log.getvalue()
    assert f"/manage/{build.gallery_id}/" in written, written  # the lines were written ...
    assert token not in written  # ... without the token
    assert f"/manage/{build.gallery_id}/[redacted]/" in written


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        ("Not Found: /manage/abc123/SeCrEt-_tok3n/", "Not Found: /manage/abc123/[redacted]/"),
        ("Method Not Allowed (HEAD): /manage/abc123/SeCrEt", "Method Not Allowed (HEAD): /manage/abc123/[redacted]"),
        ("at http://app.example/manage/abc123/SeCrEt/?x=1 now", "at http://app.example/manage/abc123/[redacted]/?x=1 now"),
        ("GET /mine/abc123/ and /manage/abc123/", "GET /mine/abc123/ and /manage/abc123/"),
    ],
)
def test_a_log_line_naming_a_management_link_loses_its_token(line, redacted):
    assert redact_secrets(line) == redacted
