"""Galleries: what a publisher uploaded and its settings, their ids, and the query rules about them.

A ``Gallery`` is one SQLite database, a title, the chosen plugins, and its moderation state;
``Gallery.live_build`` points at the approved build its content origin serves (DESIGN.md, "Bundle").
"""

from __future__ import annotations

import re
import secrets
import string
from pathlib import PurePath

from django.conf import settings
from django.db import models

from builder.catalog import DEFAULT_DATASETTE_VERSION
from gallery.models.states import BuildReview, BuildState, ModerationState
from gallery.origins import content_origin

_LETTERS = string.ascii_lowercase
_ALPHANUMERIC = string.ascii_lowercase + string.digits

#: A gallery id: a DNS label of 12 characters, ``[a-z][a-z0-9]{11}``.
GALLERY_ID_RE = re.compile(r"[a-z][a-z0-9]{11}")
#: A build id: 16 characters of ``[a-z0-9]``.
BUILD_ID_RE = re.compile(r"[a-z0-9]{16}")
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


#: Longest gallery title (characters): forms, ``services.uploads.clean_settings`` and the column agree.
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

    ModerationState = ModerationState

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
    #: When readers' reports held the approved gallery for review (``services.reports.hold_for_review``):
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


class Submission(Gallery):
    """A gallery as a row of the moderation queue (a proxy of ``Gallery``; see ``gallery.admin``)."""

    class Meta:
        proxy = True
        verbose_name = "submission awaiting review"
        verbose_name_plural = "moderation queue"
