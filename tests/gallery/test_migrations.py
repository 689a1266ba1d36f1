"""Migration 0011 decides which builds made before approval was per build count as approved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("gallery", "0010_build_warnings")]
AFTER = [("gallery", "0013_remove_build_needs_review")]


def migrate(targets: list[tuple[str, str]]):
    """Migrate the test database to ``targets``; return the historical app registry there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_latest():
    """Whatever the test does, leave the database at the newest migrations for the tests after it."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_latest")
def test_only_builds_that_went_live_under_an_approval_stay_served_after_the_migration() -> None:
    old = migrate(BEFORE)
    Gallery, Build, AuditEvent = (old.get_model("gallery", name) for name in ("Gallery", "Build", "AuditEvent"))
    now = timezone.now()

    def build(gallery, minutes: int, **fields):
        made = Build.objects.create(gallery=gallery, source_key="k", source_sha256="0" * 64, source_bytes=1, **fields)
        Build.objects.filter(pk=made.pk).update(
            created_at=now + timedelta(minutes=minutes), finished_at=now + timedelta(minutes=minutes + 1)
        )
        return made

    # The audit log is append-only (its times cannot be changed): builds are placed around it.
    approved = Gallery.objects.create(id="approvedgall", title="Approved", plugins=["datasette-pretty-json"],
                                      moderation_state="approved")  # fmt: skip
    AuditEvent.objects.create(action="approve", gallery_id=approved.pk, actor_label="mod", details={})
    never_seen = build(approved, -30, state="ready")  # version A: superseded before the approval
    live = build(approved, -20, state="ready")  # version B: what the moderator approved
    rebuilt = build(approved, 10, state="ready")  # a trusted rebuild that went live, then superseded
    waiting = build(approved, 20, state="ready", needs_review=True)  # a new version waiting for review
    Gallery.objects.filter(pk=approved.pk).update(live_build=live)

    pending = Gallery.objects.create(id="pendinggalle", title="Pending", moderation_state="pending")
    pending_live = build(pending, 0, state="ready")
    Gallery.objects.filter(pk=pending.pk).update(live_build=pending_live)

    rejected = Gallery.objects.create(id="rejectedgall", title="Rejected", moderation_state="rejected")
    AuditEvent.objects.create(action="reject", gallery_id=rejected.pk, actor_label="mod", details={})
    before_rejection = build(rejected, -10, state="ready")
    corrected = build(rejected, 10, state="ready")

    new = migrate(AFTER)
    Build = new.get_model("gallery", "Build")
    Gallery = new.get_model("gallery", "Gallery")
    reviews = dict(Build.objects.values_list("pk", "review"))
    assert reviews[live.pk] == reviews[rebuilt.pk] == "approved"
    assert reviews[never_seen.pk] == reviews[waiting.pk] == "pending"
    assert Build.objects.get(pk=live.pk).approval == "migrated"
    assert Build.objects.get(pk=live.pk).bundle_settings == {
        "title": "Approved", "description": "", "plugins": ["datasette-pretty-json"], "metadata": {},
        "datasette_version": approved.datasette_version,
    }  # fmt: skip
    assert Gallery.objects.get(pk=pending.pk).live_build_id is None and reviews[pending_live.pk] == "pending"
    assert (reviews[before_rejection.pk], reviews[corrected.pk]) == ("rejected", "pending")
