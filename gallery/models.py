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
    return secrets.choice(_LETTERS) + "".join(
        secrets.choice(_ALPHANUMERIC) for _ in range(11)
    )


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

    id = models.CharField(
        primary_key=True, max_length=12, default=new_gallery_id, editable=False
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.LISTED
    )
    moderation_state = models.CharField(
        max_length=12,
        choices=ModerationState.choices,
        default=ModerationState.PENDING,
        db_index=True,
    )
    #: Why a moderator rejected or took the gallery down; shown to the publisher.
    moderation_reason = models.TextField(blank=True)
    database_name = models.CharField(max_length=60, default="data")
    plugins = models.JSONField(default=list, blank=True)
    #: Datasette metadata and plugin settings from the publisher, checked by
    #: ``builder.metadata.parse_metadata``; handed to Datasette in the bundle.
    metadata = models.JSONField(default=dict, blank=True)
    datasette_version = models.CharField(
        max_length=20, default=DEFAULT_DATASETTE_VERSION
    )
    live_build = models.ForeignKey(
        "Build", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "galleries"

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
    def is_public(self) -> bool:
        """Whether readers can open it: approved by a moderator and a build is live."""
        return (
            self.moderation_state == self.ModerationState.APPROVED
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


class Build(models.Model):
    """One attempt to turn a gallery's uploaded database into a bundle."""

    State = BuildState

    id = models.CharField(
        primary_key=True, max_length=16, default=new_build_id, editable=False
    )
    gallery = models.ForeignKey(
        Gallery, on_delete=models.CASCADE, related_name="builds"
    )
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
    #: Size in bytes of the self-host zip (``/_download/<build-id>.zip``), when the build reports it.
    download_bytes = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"build {self.id} of {self.gallery_id} ({self.state})"

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
        Build.objects.filter(pk=self.pk).update(
            log=Concat(F("log"), Value(text), output_field=models.TextField())
        )
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
            changes["started_at"] = Coalesce(
                F("started_at"), Value(now), output_field=models.DateTimeField()
            )
        if state in FINAL_STATES:
            changes["finished_at"] = now
        updated = (
            Build.objects.filter(pk=self.pk)
            .exclude(state__in=FINAL_STATES)
            .update(**changes)
        )
        if updated:
            self.refresh_from_db(fields=list(changes))
        return bool(updated)


def ready_build(gallery_id: str, build_id: str) -> Build | None:
    """Build ``build_id`` of gallery ``gallery_id`` if it is ``ready`` (a version readers may open), else ``None``."""
    return Build.objects.filter(pk=build_id, gallery_id=gallery_id, state=BuildState.READY).first()
