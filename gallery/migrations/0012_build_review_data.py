"""Approval per build, the data: which existing builds count as approved (migration 0011 added
the fields).

Which existing builds count as approved (``approval = "migrated"``): the live build of an
approved gallery, and every ready build that finished, without ``needs_review``, at or after
the gallery was first approved (its upload approved at once, or a moderator's approval in the
audit log): those went live when they finished, so they were published by someone the gallery's
approval covered. A build that finished before the gallery's first approval was never reviewed
(a moderator approved a later one), and one with ``needs_review`` still waits: both stay
pending, so no public address serves them. Builds of a rejected gallery made before its latest
rejection are rejected. A pending gallery's live build is cleared: only approved builds are live.
Each build's ``bundle_settings`` is its gallery's settings now (older builds kept no copy).
"""

from django.db import migrations
from django.db.models import Q

BUNDLED = ("title", "description", "plugins", "metadata", "datasette_version")


def first_approval(AuditEvent, gallery_id):
    """When ``gallery_id`` was first approved, from the audit log, or ``None``."""
    times = []
    approved_upload = (
        AuditEvent.objects.filter(gallery_id=gallery_id, action="upload", details__state="approved")
        .order_by("created_at").values_list("created_at", flat=True).first()
    )  # fmt: skip
    if approved_upload is not None:
        times.append(approved_upload)
    approval = (
        AuditEvent.objects.filter(gallery_id=gallery_id, action="approve")
        .order_by("created_at").values_list("created_at", flat=True).first()
    )  # fmt: skip
    if approval is not None:
        times.append(approval)
    return min(times) if times else None


def forwards(apps, schema_editor):
    Gallery = apps.get_model("gallery", "Gallery")
    Build = apps.get_model("gallery", "Build")
    AuditEvent = apps.get_model("gallery", "AuditEvent")
    for gallery in Gallery.objects.all().iterator():
        Build.objects.filter(gallery_id=gallery.pk).update(
            bundle_settings={field: getattr(gallery, field) for field in BUNDLED}
        )
        if gallery.moderation_state == "pending":
            Gallery.objects.filter(pk=gallery.pk).update(live_build=None)
            continue
        if gallery.moderation_state == "rejected":
            rejected_at = (
                AuditEvent.objects.filter(gallery_id=gallery.pk, action="reject")
                .order_by("-created_at").values_list("created_at", flat=True).first()
            )  # fmt: skip
            if rejected_at is not None:
                Build.objects.filter(gallery_id=gallery.pk, created_at__lte=rejected_at).update(review="rejected")
            continue
        if gallery.moderation_state != "approved":
            continue  # taken down or deleted: every origin answers 410 whatever the builds say
        approved_at = first_approval(AuditEvent, gallery.pk)
        went_live = Q(pk=gallery.live_build_id)
        if approved_at is not None:
            went_live |= Q(state="ready", needs_review=False, finished_at__gte=approved_at)
        Build.objects.filter(went_live, gallery_id=gallery.pk).update(review="approved", approval="migrated")


class Migration(migrations.Migration):
    dependencies = [("gallery", "0011_build_review")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
