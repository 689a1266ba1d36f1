"""A new publisher in Chromium: publishes through the form anonymously, signs up (the
verification email read from Django's outbox) and finds that upload in the account; opens a
management link someone sent and adds that gallery only with the button; finds the upload
pending on My galleries and opens its preview. (Publishing signed in: tests/gallery/test_publisher.py.)

The live server runs in this process, so the locmem email backend's ``mail.outbox`` holds
what allauth sent; a real Celery worker builds the bundle.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from gallery.models import AuditEvent, Build, Gallery
from gallery.services import ownership

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

EMAIL = "grace@example.org"
PASSWORD = "a long enough passphrase 1906"


def test_a_new_publisher_publishes_signs_up_keeps_the_upload_and_previews_it(
    page: Any, live_gallery_server: Any, celery_worker: Any, shared_data: Path
) -> None:
    app = live_gallery_server.url
    mail.outbox.clear()

    # --- Publish anonymously first: the build page shows the management link once.
    page.goto(app + "/publish/")
    page.set_input_files("input[name=file]", str(shared_data / "chinook.sqlite"))
    page.fill("input[name=title]", "Grace's first try")
    page.click("#publish-button")
    page.wait_for_url(re.compile(r"/builds/[a-z0-9]{16}/$"))
    assert page.locator("#management-link a").first.inner_text().startswith(app + "/manage/")
    first = Build.objects.get(pk=page.url.rstrip("/").rsplit("/", 1)[1])
    assert page.locator("#log").count() == 1  # the uploader sees the build's log

    # --- Sign up from the nav; the address must be confirmed before anything else.
    page.goto(app + "/")
    page.click("header a:text-is('Sign up')")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("h1:has-text('Verify Your Email Address')")
    (message,) = mail.outbox
    assert message.to == [EMAIL]
    (confirm,) = re.findall(r"https?://\S+/accounts/confirm-email/\S+", message.body)
    page.goto(confirm)
    page.click("form button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/mine/"), (page.url, page.inner_text("main"))  # logged in on confirmation
    assert page.locator("header a:text-is('My galleries')").is_visible()
    # What this browser uploaded moved into the account on logging in.
    assert page.locator(f"section[data-gallery='{first.gallery_id}']").is_visible()
    assert Gallery.objects.get(pk=first.gallery_id).owner.email == EMAIL

    # --- A management link someone sent: opening it changes no owner; the button does.
    sent = Gallery.objects.create(title="Sent to Grace", database_name="sent")
    page.goto(f"{app}/manage/{sent.pk}/{ownership.new_management_token(sent)}/")
    assert page.url == f"{app}/mine/{sent.pk}/"
    button = page.locator("#claim-button")
    assert button.inner_text() == f"Add this gallery to my account ({EMAIL})"
    assert Gallery.objects.get(pk=sent.pk).owner is None
    assert not AuditEvent.objects.filter(action="claim", gallery_id=sent.pk).exists()
    button.click()
    page.wait_for_selector("text=is now in your account")
    assert Gallery.objects.get(pk=sent.pk).owner.email == EMAIL

    # --- The build page of the upload, now the account's: the log, then the outcome.
    page.goto(app + first.get_absolute_url())
    assert page.locator("#management-link").count() == 0  # shown once, before
    page.wait_for_selector("#outcome :text('waiting for a moderator')", timeout=180_000)
    assert "== Uploading the bundle" in page.inner_text("#log")
    build = Build.objects.select_related("gallery").get(pk=first.pk)

    # --- My galleries: pending, with the build; the gallery's page links its preview.
    page.click("header a:text-is('My galleries')")
    card = page.locator(f"section[data-gallery='{build.gallery_id}']")
    assert "Waiting for a moderator's approval" in card.inner_text()
    card.locator("h2 a").click()
    row = page.locator(f"tr[data-build='{build.pk}']")
    assert "Ready" in row.inner_text()
    preview = row.locator("a.preview").get_attribute("href")
    assert preview is not None and preview.startswith(f"http://pv-{build.pk}-")

    # --- The preview boots Datasette on its own origin; the public origin serves nothing yet.
    page.goto(preview + "chinook/Album")
    page.wait_for_selector("table.rows-and-columns", timeout=120_000)
    assert page.inner_text("h3").strip().startswith("347 rows")
    public = page.context.new_page()
    response = public.goto(build.gallery.url)
    assert response is not None and response.status == 404
    assert Gallery.objects.get(pk=build.gallery_id).moderation_state == "pending"
