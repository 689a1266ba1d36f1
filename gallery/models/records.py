"""What readers and moderators leave on record: readers' reports and the append-only audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils.crypto import salted_hmac

from gallery.models.limits import REPORT_DETAILS_MAX_LENGTH


def hash_ip(address: str) -> str:
    """A salted sha256 hex digest of an IP address (64 characters), or "" for no address.

    Salted with ``SECRET_KEY`` so the stored value cannot be reversed by hashing every
    IPv4 address; the same address always gives the same digest on one installation.
    """
    if not address:
        return ""
    return salted_hmac("glasshouse.ip", address, algorithm="sha256").hexdigest()


class Report(models.Model):
    """A reader's report about a gallery, from the report form on the app origin."""

    class Reason(models.TextChoices):
        PERSONAL_DATA = "personal_data", "It exposes personal data"
        ILLEGAL = "illegal", "Illegal content"
        COPYRIGHT = "copyright", "Copyright or licence infringement"
        HARMFUL = "harmful", "Hateful, harassing or harmful content"
        SPAM = "spam", "Spam or malware"
        BROKEN = "broken", "It does not work"
        OTHER = "other", "Something else"

    #: Reasons about harm, the only ones that count toward holding a gallery for review
    #: (``REPORTS_TAKEDOWN_THRESHOLD``): harm to people or readers cannot wait for a moderator.
    #: A broken gallery, a copyright claim or anything else reaches the moderation queue but
    #: never hides the gallery, so readers cannot take a working gallery down by saying it fails.
    HOLD_REASONS: tuple[str, ...] = (Reason.PERSONAL_DATA, Reason.ILLEGAL, Reason.HARMFUL, Reason.SPAM)

    gallery = models.ForeignKey("Gallery", on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    details = models.CharField(max_length=REPORT_DETAILS_MAX_LENGTH, blank=True)
    #: Optional, for the moderators' reply.
    email = models.EmailField(blank=True)
    #: ``hash_ip`` of the reporter's network (``services.reports.reporter_key_for``: the IPv4 address, the
    #: IPv6 /64), whatever the account: counts distinct reporters.
    reporter_key = models.CharField(max_length=64, blank=True)
    #: The gallery page the reader reported from, when known.
    page_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"report on {self.gallery_id}: {self.get_reason_display()}"


class AppendOnly(Exception):
    """Raised on an attempt to change or delete an ``AuditEvent``."""


class AuditEvent(models.Model):
    """One append-only record of something that happened to a gallery: who, when, what and why.

    Rows are never changed or deleted: ``save`` refuses updates, ``delete`` raises
    ``AppendOnly``, and a database trigger (migration 0005) refuses ``UPDATE`` and
    ``DELETE`` from anywhere else (on SQLite ``UPDATE`` only, so ``manage.py flush`` works). ``gallery_id`` and ``actor`` carry no foreign-key
    constraint, so the record outlives the rows it names.
    """

    class Action(models.TextChoices):
        UPLOAD = "upload", "Upload"
        NEW_VERSION = "new_version", "New version uploaded"
        REBUILD = "rebuild", "Rebuild"
        BUILD_READY = "build_ready", "Build ready"
        BUILD_FAILED = "build_failed", "Build failed"
        EDIT = "edit", "Edit"
        CLAIM = "claim", "Claimed by an account"
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"
        TAKE_DOWN = "take_down", "Take down"
        REPORT = "report", "Report"
        HOLD = "hold", "Held for review after reports"
        DELETE = "delete", "Delete"
        TRUST = "trust", "Trust publisher"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    gallery_id = models.CharField(max_length=12, blank=True, db_index=True)
    build_id = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    #: Who, in words: ``"alice@example.org (moderator)"``, ``"anonymous 3f2a9c01"``, ``"system"``.
    actor_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.gallery_id} by {self.actor_label}"

    def save(self, *args: object, **kwargs: object) -> None:
        """Insert the record; raises ``AppendOnly`` if it is already stored."""
        if not self._state.adding:
            raise AppendOnly("audit records cannot be changed")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        """Always raises ``AppendOnly``."""
        raise AppendOnly("audit records cannot be deleted")


#: Audit actions that count as a moderator's decision on a gallery: reports older than the
#: latest one have been looked at.
DECISIONS = (AuditEvent.Action.APPROVE, AuditEvent.Action.REJECT, AuditEvent.Action.TAKE_DOWN)


def unreviewed_reports(gallery_ref: str = "pk") -> Exists:
    """An ``Exists`` expression: the gallery (``OuterRef(gallery_ref)``) has reports newer than its
    latest moderator decision (``DECISIONS`` in the audit log), or any report if none was made."""
    last_decision = (
        AuditEvent.objects.filter(gallery_id=OuterRef(OuterRef(gallery_ref)), action__in=DECISIONS)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    return Exists(
        Report.objects.filter(gallery=OuterRef(gallery_ref)).filter(
            Q(created_at__gt=Subquery(last_decision)) | Q(~Exists(last_decision))
        )
    )
