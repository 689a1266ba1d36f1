"""Galleries: what a publisher uploaded and its settings, and the query rules about them.

A ``Gallery`` is one SQLite database, a title, the chosen plugins, and its moderation state;
``Gallery.live_build`` points at the approved build its content origin serves (DESIGN.md, "Bundle").
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q

from builder.catalog import DEFAULT_DATASETTE_VERSION
from gallery.models.builds import BUNDLED_SETTINGS, Build
from gallery.models.ids import new_gallery_id
from gallery.models.limits import DESCRIPTION_MAX_LENGTH, MODERATION_REASON_MAX_LENGTH, TITLE_MAX_LENGTH
from gallery.models.records import unreviewed_reports
from gallery.models.states import BuildReview, BuildState, ModerationState
from gallery.origins import content_origin


class GalleryQuerySet(models.QuerySet["Gallery"]):
    """Query rules about galleries, in one place."""

    def public(self) -> GalleryQuerySet:
        """Galleries readers may open: approved, not held for review, and a live build that is
        ready, stored and approved (listed or not)."""
        return self.filter(
            moderation_state=ModerationState.APPROVED,
            held_at__isnull=True,
            live_build__state=BuildState.READY,
            live_build__files_deleted=False,
            live_build__review=BuildReview.APPROVED,
        )

    def not_deleted(self) -> GalleryQuerySet:
        """Every gallery but the tombstones."""
        return self.exclude(moderation_state=ModerationState.DELETED)

    def awaiting_review(self) -> GalleryQuerySet:
        """Galleries a moderator must look at (the moderation queue): pending ones, approved ones whose new
        version waits for review, that readers reported since the last decision (``unreviewed_reports``)
        or that reports held, and rejected ones whose publisher uploaded a corrected version."""
        waiting = Build.objects.reviewable().filter(gallery=OuterRef("pk"))
        # Newer than the live build: an older one waiting was superseded unreviewed (never served).
        newer_than_live = waiting.filter(created_at__gt=OuterRef("live_build__created_at"))
        return self.alias(
            has_waiting_version=Exists(waiting),
            has_new_version=Exists(newer_than_live),
            has_new_reports=unreviewed_reports(),
        ).filter(
            Q(moderation_state=ModerationState.PENDING)
            | Q(moderation_state=ModerationState.APPROVED, has_new_version=True)
            | Q(moderation_state=ModerationState.APPROVED, live_build__isnull=True, has_waiting_version=True)
            | Q(moderation_state=ModerationState.APPROVED, held_at__isnull=False)
            | Q(moderation_state=ModerationState.APPROVED, has_new_reports=True)
            | Q(moderation_state=ModerationState.REJECTED, has_waiting_version=True)
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
    #: For a CSV, TSV, JSON or Excel upload (``builder.tabular``): give its tables full-text search,
    #: on ``search_columns`` (column names), or on every text column when that is empty.
    full_text_search = models.BooleanField(default=False)
    search_columns = models.JSONField(default=list, blank=True)
    live_build = models.ForeignKey(Build, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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


def bundled_settings(gallery: Gallery) -> dict[str, object]:
    """``gallery``'s current ``BUNDLED_SETTINGS`` as a dict, the shape of ``Build.bundle_settings``."""
    return {field: getattr(gallery, field) for field in BUNDLED_SETTINGS}


#: The plugin whose galleries ask crawlers not to index them (it answers ``/robots.txt`` inside the bundle).
BLOCK_ROBOTS_PLUGIN = "datasette-block-robots"


def asks_not_to_be_indexed(visibility: str, plugins: Iterable[str]) -> bool:
    """Whether crawlers are asked not to index a gallery of ``visibility`` whose live build bundles
    ``plugins``: unlisted galleries, and those with ``BLOCK_ROBOTS_PLUGIN``. Crawlers run no
    Service Worker, so the server (the gallery page, the content origin's ``/robots.txt`` and
    ``X-Robots-Tag``) answers for the bundle."""
    return visibility == Gallery.Visibility.UNLISTED or BLOCK_ROBOTS_PLUGIN in plugins
