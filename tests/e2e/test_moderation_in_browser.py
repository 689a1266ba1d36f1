"""A moderator works the queue in Chromium: previews a pending gallery, approves it, and a reader opens it.

The moderator is a staff user in the "Moderators" group (not a superuser) who signs in to
the Django admin. The gallery is the session's shared Chinook bundle, left pending.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gallery.models import AuditEvent, Gallery
from tests.plugins.users import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BOOT_MS = 120_000


def test_a_moderator_previews_and_approves_from_the_queue_and_a_reader_opens_it(
    browser: Any, page: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path, moderator: Any
) -> None:
    gallery = published_gallery(shared_data / "chinook.sqlite", title="Chinook, awaiting review")
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)

    page.goto(live_gallery_server.url + "/admin/login/?next=/admin/gallery/submission/")
    page.fill("#id_username", moderator.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    row = page.locator("#result_list tbody tr", has_text="Chinook, awaiting review")
    row.wait_for()
    assert "Album (347 rows)" in row.inner_text()
    assert "email: Customer.Email: 59 of 59" in row.inner_text()  # the build's data scan

    with page.context.expect_page() as opened:
        row.get_by_role("link", name="Preview").click()
    preview = opened.value
    preview.wait_for_selector("a[href$='/Album']", timeout=BOOT_MS)  # Datasette's database page, booted
    assert preview.url.startswith("http://pv-")
    preview.close()

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "approve_galleries")
    page.click("button[name=index]")
    page.wait_for_selector("text=Approved 1 galleries.")
    assert "Chinook, awaiting review" not in page.inner_text("#changelist")  # out of the queue
    assert AuditEvent.objects.filter(gallery_id=gallery.pk, action="approve", actor_label__contains="moderator").exists()

    reader = browser.new_context()
    try:
        reading = reader.new_page()
        reading.goto(gallery.url + "chinook/Album")
        reading.wait_for_selector("table.rows-and-columns", timeout=BOOT_MS)
        assert reading.inner_text("h3").strip().startswith("347 rows")
    finally:
        reader.close()
