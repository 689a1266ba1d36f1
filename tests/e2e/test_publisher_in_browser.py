"""A new publisher in Chromium: signs up (the verification email read from Django's outbox),
publishes through the form, finds the gallery pending on My galleries and opens its preview.

The live server runs in this process, so the locmem email backend's ``mail.outbox`` holds
what allauth sent; a real Celery worker builds the bundle.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from gallery.models import Build, Gallery

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

EMAIL = "grace@example.org"
PASSWORD = "a long enough passphrase 1906"


def test_a_new_publisher_signs_up_publishes_and_previews_the_pending_gallery(
    page: Any, live_gallery_server: Any, celery_worker: Any, shared_data: Path
) -> None:
    app = live_gallery_server.url
    mail.outbox.clear()

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
    assert "You have no galleries yet" in page.inner_text("main")

    # --- Publish through the form, signed in: no management link, the gallery is the account's.
    page.goto(app + "/publish/")
    page.set_input_files("input[name=file]", str(shared_data / "chinook.sqlite"))
    page.fill("input[name=title]", "Grace's Chinook")
    page.click("#publish-button")
    page.wait_for_url(re.compile(r"/builds/[a-z0-9]{16}/$"))
    assert page.locator("#management-link").count() == 0
    build = Build.objects.select_related("gallery").get(pk=page.url.rstrip("/").rsplit("/", 1)[1])
    assert build.gallery.owner.email == EMAIL
    page.wait_for_selector("#outcome :text('waiting for a moderator')", timeout=180_000)

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
