"""The build page's script shows the database check's warnings as they arrive, as text (Chromium)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from gallery.models import Build, BuildState, Gallery

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WARNING = "This database was in WAL mode <img src=x onerror=window.__pwned=1>: changes not checkpointed are missing."


def test_a_warning_that_arrives_while_the_page_is_open_is_shown_as_text(page: Any, live_server: Any) -> None:
    gallery = Gallery.objects.create(title="WAL", database_name="wal", moderation_state=Gallery.ModerationState.PENDING)
    build = Build.objects.create(
        gallery=gallery, source_key="uploads/w/source.db", source_sha256="3" * 64, source_bytes=8192,
        sent_at=timezone.now(),
    )  # fmt: skip
    page.goto(live_server.url + build.get_absolute_url())
    assert page.locator("#warnings .notice").count() == 0
    build.set_state(BuildState.READY)
    Build.objects.filter(pk=build.pk).update(warnings=[WARNING])
    notice = page.locator("#warnings .notice.warning")
    notice.wait_for(timeout=15_000)  # the page polls the status every second
    assert notice.inner_text() == f"Warning: {WARNING}"
    assert page.locator("#warnings img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert "Built; waiting for a moderator" in page.inner_text("#outcome"), "the outcome still renders beside it"
