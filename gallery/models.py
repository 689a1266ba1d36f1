"""Galleries and their builds.

A ``Gallery`` is what a publisher uploaded: one SQLite database, a title, the
chosen plugins, and its moderation state. Each ``Build`` turns the stored upload
into an immutable bundle under ``builds/<build-id>/``; ``Gallery.live_build``
points at the bundle the content origin serves (DESIGN.md, "Bundle").
"""

from __future__ import annotations

import re
import secrets
import string
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from builder.catalog import DEFAULT_DATASETTE_VERSION

_LETTERS = string.ascii_lowercase
_ALPHANUMERIC = string.ascii_lowercase + string.digits

#: A gallery id: a DNS label of 12 characters, ``[a-z][a-z0-9]{11}``.
GALLERY_ID_RE = re.compile(r"[a-z][a-z0-9]{11}")
#: A build id: 16 characters of ``[a-z0-9]``.
BUILD_ID_RE = re.compile(r"[a-z0-9]{16}")
#: The first label of a content-origin host: ``<gallery-id>`` serves the live build,
#: ``<gallery-id>--<build-id>`` always serves that one build (a pinned version).
CONTENT_LABEL_RE = re.compile(r"(?P<gallery>[a-z][a-z0-9]{11})(?:--(?P<build>[a-z0-9]{16}))?")


def parse_content_label(label: str) -> tuple[str, str | None] | None:
    """Split a content-origin host label into ``(gallery_id, build_id or None)``.

    ``"abc123def456"`` -> ``("abc123def456", None)``;
    ``"abc123def456--0123456789abcdef"`` -> ``("abc123def456", "0123456789abcdef")``;
    anything else -> ``None``.
    """
    match = CONTENT_LABEL_RE.fullmatch(label)
    if match is None:
        return None
    return match["gallery"], match["build"]


def content_origin(label: str) -> str:
    """The origin ``"{CONTENT_SCHEME}://{label}.{CONTENT_DOMAIN}[:{CONTENT_PORT}]"`` (no trailing slash)."""
    port = f":{settings.CONTENT_PORT}" if settings.CONTENT_PORT else ""
    return f"{settings.CONTENT_SCHEME}://{label}.{settings.CONTENT_DOMAIN}{port}"


def new_gallery_id() -> str:
    """Return a random, opaque gallery id that is a valid DNS label (``GALLERY_ID_RE``, ~60 bits)."""
    return secrets.choice(_LETTERS) + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(11))


def new_build_id() -> str:
    """Return a random build id (``BUILD_ID_RE``, ~82 bits); also the capability to view its page."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))


def database_name_for(filename: str) -> str:
    """Return the database name used in Datasette URLs for an uploaded ``filename``.

    The file's stem, lowercased, with every character outside ``[a-z0-9_-]``
    replaced by ``-`` (runs collapsed, ends trimmed), at most 60 characters;
    ``"data"`` if nothing is left. ``"My Chinook.sqlite"`` -> ``"my-chinook"``.
    """
    stem = PurePath(PurePath(filename).name).stem.lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem).strip("-_")[:60].strip("-_")
    return slug or "data"


#: Longest gallery title (characters): forms, ``services.clean_settings`` and the column agree.
TITLE_MAX_LENGTH = 200
#: Longest gallery description (characters).
DESCRIPTION_MAX_LENGTH = 5000
#: Longest Datasette metadata text a publisher may send, YAML or JSON (characters); stored parsed.
METADATA_TEXT_MAX_LENGTH = 100_000
#: Longest details of a reader's report (characters).
REPORT_DETAILS_MAX_LENGTH = 5000
#: Longest reason a moderator gives for a rejection or takedown (characters); the publisher reads it.
MODERATION_REASON_MAX_LENGTH = 2000


class GalleryQuerySet(models.QuerySet["Gallery"]):
    """Query rules about galleries, in one place."""

    def public(self) -> GalleryQuerySet:
        """Galleries readers may open: approved, not held for review, and a live build that is
        ready, stored and approved (listed or not)."""
        return self.filter(
            moderation_state=Gallery.ModerationState.APPROVED,
            held_at__isnull=True,
            live_build__state=BuildState.READY,
            live_build__files_deleted=False,
            live_build__review=BuildReview.APPROVED,
        )


class Gallery(models.Model):
    """One published (or to-be-published) SQLite database and its settings."""

    class Visibility(models.TextChoices):
        LISTED = "listed", "Listed on the front page"
        UNLISTED = "unlisted", "Unlisted: only people with the link"

    class ModerationState(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        TAKEN_DOWN = "taken_down", "Taken down"
        #: A tombstone: the row stays so the id is never reused; its origins answer 410.
        DELETED = "deleted", "Deleted"

    id = models.CharField(primary_key=True, max_length=12, default=new_gallery_id, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.CharField(max_length=DESCRIPTION_MAX_LENGTH, blank=True)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.LISTED)
    moderation_state = models.CharField(
        max_length=12,
        choices=ModerationState.choices,
        default=ModerationState.PENDING,
        db_index=True,
    )
    #: Why a moderator rejected or took the gallery down; shown to the publisher.
    moderation_reason = models.CharField(max_length=MODERATION_REASON_MAX_LENGTH, blank=True)
    database_name = models.CharField(max_length=60, default="data")
    plugins = models.JSONField(default=list, blank=True)
    #: Datasette metadata and plugin settings from the publisher, checked by
    #: ``builder.metadata.parse_metadata``; handed to Datasette in the bundle.
    metadata = models.JSONField(default=dict, blank=True)
    datasette_version = models.CharField(max_length=20, default=DEFAULT_DATASETTE_VERSION)
    live_build = models.ForeignKey("Build", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: The publisher's account; ``None`` for an anonymous upload not claimed yet.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="galleries",
    )
    #: sha256 hex of the private management token of an anonymous upload ("" if none).
    management_key_hash = models.CharField(max_length=64, blank=True, editable=False)
    #: Salted sha256 hex of the uploader's IP address (``hash_ip``), "" if unknown.
    uploader_ip_hash = models.CharField(max_length=64, blank=True, editable=False)
    #: When readers' reports held the approved gallery for review (``services.hold_for_review``):
    #: not served until a moderator approves it again, rejects it or takes it down; files kept.
    held_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Bootstrap-page loads of the public origin, counted on the server.
    view_count = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GalleryQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "galleries"
        permissions = (("moderate_gallery", "Can approve, reject and take down galleries"),)

    def __str__(self) -> str:
        return f"{self.title} ({self.id})"

    @property
    def url(self) -> str:
        """The gallery's content origin, ``"{scheme}://{id}.{CONTENT_DOMAIN}[:port]/"``; follows the live build."""
        return content_origin(self.id) + "/"

    def pinned_url(self, build_id: str) -> str:
        """The origin that always serves build ``build_id``: ``"{scheme}://{id}--{build_id}.{CONTENT_DOMAIN}[:port]/"``."""
        return content_origin(f"{self.id}--{build_id}") + "/"

    @property
    def is_deleted(self) -> bool:
        """Whether the gallery is a tombstone (deleted; its id stays taken)."""
        return self.moderation_state == self.ModerationState.DELETED

    @property
    def is_public(self) -> bool:
        """Whether readers can open it: approved by a moderator, not held for review, and a build is live."""
        return (
            self.moderation_state == self.ModerationState.APPROVED
            and self.held_at is None
            and self.live_build_id is not None
        )


class BuildState(models.TextChoices):
    """Where a build is: ``queued -> validating -> resolving -> bundling -> uploading -> ready``."""

    QUEUED = "queued", "Queued"
    VALIDATING = "validating", "Validating the database"
    RESOLVING = "resolving", "Resolving Datasette and plugins"
    BUNDLING = "bundling", "Writing the bundle"
    UPLOADING = "uploading", "Uploading the bundle"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


#: States a build never leaves.
FINAL_STATES: tuple[str, ...] = (
    BuildState.READY,
    BuildState.FAILED,
    BuildState.CANCELLED,
)
#: The happy path, in order, as shown on the build page.
PROGRESS_STATES: tuple[str, ...] = (
    BuildState.QUEUED,
    BuildState.VALIDATING,
    BuildState.RESOLVING,
    BuildState.BUNDLING,
    BuildState.UPLOADING,
    BuildState.READY,
)


class BuildReview(models.TextChoices):
    """A build's moderation: only an ``approved`` build is ever served on a public address.

    ``pending``: nobody vouched for it yet (a moderator must look at it); ``approved``: a
    moderator approved it after review, or it was built for someone who publishes without
    review (``Build.approval`` says which); ``rejected``: the gallery was rejected while this
    build existed, so it is never served again, even if the gallery is approved later.
    """

    PENDING = "pending", "Waiting for review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Approval(models.TextChoices):
    """Who vouched for an approved build (``Build.approval``)."""

    MODERATOR = "moderator", "Approved by a moderator after review"
    TRUSTED = "trusted", "Published by a trusted publisher or staff"
    OPERATOR = "operator", "Published by the operator (manage.py publish)"
    AUTOMATIC = "automatic", "Approved automatically (GALLERY_AUTO_APPROVE)"
    REBUILD = "rebuild", "A moderator's rebuild of an approved build, with its source and settings"
    MIGRATED = "migrated", "Served before approval was recorded per build (migration 0011)"


#: Gallery settings a build bakes into its bundle; each build keeps its own copy (``Build.bundle_settings``).
BUNDLED_SETTINGS: tuple[str, ...] = ("title", "description", "plugins", "metadata", "datasette_version")


def bundled_settings(gallery: Gallery) -> dict[str, object]:
    """``gallery``'s current ``BUNDLED_SETTINGS`` as a dict, the shape of ``Build.bundle_settings``."""
    return {field: getattr(gallery, field) for field in BUNDLED_SETTINGS}


class BuildQuerySet(models.QuerySet["Build"]):
    """Query rules about builds, in one place."""

    def servable(self) -> BuildQuerySet:
        """Builds a public address may serve: ``ready``, files still stored, and ``approved``."""
        return self.filter(state=BuildState.READY, files_deleted=False, review=BuildReview.APPROVED)

    def reviewable(self) -> BuildQuerySet:
        """Builds a moderator could approve: ``ready``, files still stored, review ``pending``."""
        return self.filter(state=BuildState.READY, files_deleted=False, review=BuildReview.PENDING)


class Build(models.Model):
    """One attempt to turn a gallery's uploaded database into a bundle."""

    State = BuildState
    Review = BuildReview

    id = models.CharField(primary_key=True, max_length=16, default=new_build_id, editable=False)
    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="builds")
    state = models.CharField(
        max_length=12,
        choices=BuildState.choices,
        default=BuildState.QUEUED,
        db_index=True,
    )
    log = models.TextField(blank=True)
    #: Why the build failed, written for the publisher.
    failure_reason = models.TextField(blank=True)
    #: Storage key of the private upload, ``uploads/<build-id>/source.db``.
    source_key = models.CharField(max_length=200)
    source_sha256 = models.CharField(max_length=64)
    source_bytes = models.BigIntegerField()
    bundle_bytes = models.BigIntegerField(null=True, blank=True)
    #: The database's tables as the build found them: ``[{"name": str, "rows": int,
    #: "columns": [str]}]`` (``builder.tables.describe_tables``); empty for older builds.
    tables = models.JSONField(default=list, blank=True)
    #: Whether the build stored a share card at ``builds/<build-id>/card.png``.
    has_card = models.BooleanField(default=False)
    #: Size in bytes of the self-host zip stored at ``builds/<build-id>/download.zip`` (served at
    #: ``/_download/<build-id>.zip``); ``None`` until it is stored (builds made before builds
    #: stored it get it on the first request, ``worker_shell.tasks.store_download``).
    download_bytes = models.BigIntegerField(null=True, blank=True)
    #: The settings this build bakes into its bundle, copied from the gallery when the build is
    #: made (``bundled_settings``): ``{"title": str, "description": str, "plugins": [str],
    #: "metadata": dict, "datasette_version": str}``. A moderator approves them with the build, and
    #: public pages show the live build's, so a publisher's later edit is public only once a build
    #: of it is approved.
    bundle_settings = models.JSONField(default=dict, blank=True)
    #: The build's moderation (``BuildReview``): only ``approved`` builds are served publicly.
    review = models.CharField(
        max_length=10, choices=BuildReview.choices, default=BuildReview.PENDING, db_index=True
    )
    #: Who vouched for it, when ``review`` is approved (``Approval``); "" otherwise.
    approval = models.CharField(max_length=10, choices=Approval.choices, blank=True)
    #: When it was approved or rejected, and by whom (``None``: the system, an operator, or no one yet).
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Data-scan flags found at build time (``builder.scan``): ``[{"table", "column", "kind",
    #: "count", "sampled", "examples"}]``; empty for builds before the scan existed.
    scan_flags = models.JSONField(default=list, blank=True)
    #: What the publisher should know although the build went on, from the database check
    #: (``builder.sqlite_check``): ``[str]``, e.g. that a WAL-mode upload's un-checkpointed
    #: changes are missing. Shown on the build page; empty for most builds.
    warnings = models.JSONField(default=list, blank=True)
    #: Whether the bundle's and the upload's files were removed from storage (after a rejection,
    #: takedown or deletion). Such a build can no longer be served, downloaded or rebuilt.
    files_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Times a worker started this build (each delivery it claimed, see ``worker_shell.tasks``).
    #: A build whose worker is lost once it reached ``BUILD_MAX_ATTEMPTS`` fails.
    attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    #: When the latest attempt started; the sweeper (``gallery.sweeper``) treats an attempt
    #: older than the hard time limit plus ``BUILD_RUNNING_GRACE`` as lost.
    attempt_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: When the build was last handed to the broker; ``None`` while it never was (the broker was
    #: down at enqueue): the sweeper sends it once the broker answers.
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = BuildQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"build {self.id} of {self.gallery_id} ({self.state})"

    @property
    def is_approved(self) -> bool:
        """Whether a public address may serve this build once it is ready (``review`` is approved)."""
        return self.review == BuildReview.APPROVED

    @property
    def title(self) -> str:
        """The gallery title this build bakes in (``bundle_settings``)."""
        return str(self.bundle_settings.get("title", ""))

    @property
    def description(self) -> str:
        """The gallery description this build bakes in."""
        return str(self.bundle_settings.get("description", ""))

    @property
    def plugins(self) -> list[str]:
        """The plugins this build bundles (catalog names)."""
        return [str(name) for name in self.bundle_settings.get("plugins", [])]

    @property
    def metadata(self) -> dict:
        """The Datasette metadata this build bundles."""
        metadata = self.bundle_settings.get("metadata", {})
        return metadata if isinstance(metadata, dict) else {}

    @property
    def datasette_version(self) -> str:
        """The Datasette version this build bundles."""
        return str(self.bundle_settings.get("datasette_version", DEFAULT_DATASETTE_VERSION))

    @property
    def waits_for_queue(self) -> bool:
        """Whether the build is queued but never reached the broker (it was down): it starts by itself later."""
        return self.state == BuildState.QUEUED and self.sent_at is None

    def get_absolute_url(self) -> str:
        """Path of the build page on the app origin."""
        return reverse("gallery:build", args=[self.id])

    @property
    def card_path(self) -> str:
        """Path of the share card on the gallery origin: ``"/_build/<build-id>/card.png"``."""
        return f"/_build/{self.id}/card.png"

    @property
    def download_path(self) -> str:
        """Path of the self-host zip on the gallery origin: ``"/_download/<build-id>.zip"``."""
        return f"/_download/{self.id}.zip"

    @property
    def total_rows(self) -> int:
        """Rows in all of ``tables`` together."""
        return sum(int(table.get("rows", 0)) for table in self.tables)

    @property
    def is_final(self) -> bool:
        """Whether the build is ready, failed or cancelled."""
        return self.state in FINAL_STATES

    def append_log(self, line: str) -> None:
        """Append ``line`` (a trailing newline is added) to the log in one ``UPDATE``.

        The database concatenates, so concurrent writers never lose each other's
        lines. ``self.log`` is updated too, but may not show other writers' lines.
        """
        text = line.rstrip("\n") + "\n"
        Build.objects.filter(pk=self.pk).update(log=Concat(F("log"), Value(text), output_field=models.TextField()))
        self.log += text

    def set_state(self, state: str, reason: str = "") -> bool:
        """Move the build to ``state`` (a ``BuildState``) unless it is already final.

        Sets ``started_at`` on first leaving ``queued``, ``finished_at`` on reaching a
        final state, and ``failure_reason`` to ``reason`` when one is given. Writes
        only those columns, never the log. Returns whether the row changed.
        Raises ``ValueError`` for an unknown state.
        """
        if state not in BuildState.values:
            raise ValueError(f"unknown build state {state!r}")
        now = timezone.now()
        changes: dict[str, object] = {"state": state}
        if reason:
            changes["failure_reason"] = reason
        if state != BuildState.QUEUED:
            # Another process may have started it: keep the first start time.
            changes["started_at"] = Coalesce(F("started_at"), Value(now), output_field=models.DateTimeField())
        if state in FINAL_STATES:
            changes["finished_at"] = now
        updated = Build.objects.filter(pk=self.pk).exclude(state__in=FINAL_STATES).update(**changes)
        if updated:
            self.refresh_from_db(fields=list(changes))
        return bool(updated)


class Submission(Gallery):
    """A gallery as a row of the moderation queue (a proxy of ``Gallery``; see ``gallery.admin``)."""

    class Meta:
        proxy = True
        verbose_name = "submission awaiting review"
        verbose_name_plural = "moderation queue"


def approved_build(gallery_id: str, build_id: str) -> Build | None:
    """Build ``build_id`` of gallery ``gallery_id`` if a public address may serve it, else ``None``.

    That is a build ``ready`` with its files stored and approved (``BuildQuerySet.servable``):
    a pinned origin, a download, oEmbed and the embed panel serve no other.
    """
    return Build.objects.servable().filter(pk=build_id, gallery_id=gallery_id).first()


def hash_ip(address: str) -> str:
    """A salted sha256 hex digest of an IP address (64 characters), or "" for no address.

    Salted with ``SECRET_KEY`` so the stored value cannot be reversed by hashing every
    IPv4 address; the same address always gives the same digest on one installation.
    """
    if not address:
        return ""
    return salted_hmac("glasshouse.ip", address, algorithm="sha256").hexdigest()


class Publisher(models.Model):
    """What Glasshouse knows about a user who publishes: whether a moderator trusts them.

    Trusted publishers (and staff) are approved automatically, and their new versions go
    live without review.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="publisher"
    )
    trusted = models.BooleanField(default=False)
    trusted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"publisher {self.user}"


def is_trusted(user: object) -> bool:
    """Whether ``user`` (a ``User``, ``AnonymousUser`` or ``None``) publishes without review: staff or trusted."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_staff", False):
        return True
    return Publisher.objects.filter(user=user, trusted=True).exists()


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

    gallery = models.ForeignKey(Gallery, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    details = models.CharField(max_length=REPORT_DETAILS_MAX_LENGTH, blank=True)
    #: Optional, for the moderators' reply.
    email = models.EmailField(blank=True)
    #: ``hash_ip`` of the reporter's network (``services.reporter_key_for``: the IPv4 address, the
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
