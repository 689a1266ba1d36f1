"""A reader reports a gallery in Chromium: the footer's Report link, the form on the app origin, the thanks.

The link comes from the bundle's built-in Datasette plugin (builder/runtime/reader/glasshouse_report.py),
rendered inside the reader's browser; ``/_report`` on the gallery origin is left to the server by
the Service Worker and redirected to the app's form (gallery/content.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gallery.models import AuditEvent, Report
from tests.plugins.users import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_reader_reports_a_gallery_through_the_footer_link(
    page: Any, live_gallery_server: Any, published_gallery: Any, shared_data: Path, settings: Any,
    moderator: Any,
) -> None:
    settings.APP_URL = live_gallery_server.url
    gallery = published_gallery(shared_data / "chinook.sqlite", title="Reported in Chromium")
    table_url = gallery.url + "chinook/Album"
    page.goto(table_url)
    page.wait_for_selector("table.rows-and-columns", timeout=120_000)

    link = page.locator("footer.ft a", has_text="Report")
    assert link.get_attribute("href") == "/_report?url=%2Fchinook%2FAlbum"
    # The link opens a new tab (an embedded page must not frame the app origin), via the server.
    with page.context.expect_page() as opened:
        link.click()
    form = opened.value
    form.wait_for_selector("#report-form")
    assert form.url.startswith(f"{live_gallery_server.url}/g/{gallery.id}/report/?url=")
    assert form.inner_text("h1") == "Report “Reported in Chromium”"
    assert form.inner_text(".facts a") == table_url

    form.check("input[name=reason][value=personal_data]")
    form.fill("textarea[name=details]", "Row 3 lists a home address.")
    form.fill("input[name=email]", "reader@example.com")
    form.click("#report-form button[type=submit]")
    form.wait_for_selector("text=Thank you for your report")
    assert form.url == f"{live_gallery_server.url}/g/{gallery.id}/report/thanks/"

    report = Report.objects.get(gallery=gallery)
    assert (report.reason, report.details, report.email, report.page_url) == (
        Report.Reason.PERSONAL_DATA, "Row 3 lists a home address.", "reader@example.com", table_url,
    )
    assert len(report.reporter_key) == 64
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REPORT, gallery_id=gallery.id).count() == 1
    # The gallery the reader had open is untouched (one report is below the takedown threshold).
    assert page.locator("table.rows-and-columns").is_visible()

    # The report shows in the moderation queue, linked to the gallery.
    admin = page.context.browser.new_context()
    try:
        queue = admin.new_page()
        queue.goto(live_gallery_server.url + "/admin/login/?next=/admin/gallery/submission/")
        queue.fill("#id_username", moderator.username)
        queue.fill("#id_password", PASSWORD)
        queue.click("input[type=submit]")
        row = queue.locator("#result_list tbody tr", has_text="Reported in Chromium")
        assert row.locator("td.field-report_count").inner_text() == "1"
        row.get_by_role("link", name="Reported in Chromium").click()
        reports = queue.locator("#reports-group")
        assert "Row 3 lists a home address." in reports.inner_text()
        assert "It exposes personal data" in reports.inner_text()
    finally:
        admin.close()
