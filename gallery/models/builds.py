"""Builds: each attempt to turn a gallery's upload into an immutable bundle under ``builds/<build-id>/``,
its state, its review, and the settings it bakes in."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from builder.catalog import DEFAULT_DATASETTE_VERSION
from builder.url_map import URL_MAP
from gallery.models.ids import new_build_id
from gallery.models.states import FINAL_STATES, Approval, BuildReview, BuildState

#: Gallery settings a build bakes into its bundle; each build keeps its own copy (``Build.bundle_settings``).
BUNDLED_SETTINGS: tuple[str, ...] = (
    "title", "description", "plugins", "metadata", "datasette_version", "full_text_search", "search_columns",
)  # fmt: skip


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
    gallery = models.ForeignKey("Gallery", on_delete=models.CASCADE, related_name="builds")
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
    def full_text_search(self) -> bool:
        """Whether a CSV, TSV, JSON or Excel upload's tables get full-text search (``Gallery.full_text_search``)."""
        return bool(self.bundle_settings.get("full_text_search", False))

    @property
    def search_columns(self) -> tuple[str, ...]:
        """The columns that full-text search covers; empty: every text column."""
        return tuple(str(name) for name in self.bundle_settings.get("search_columns", []))

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
        return f"{URL_MAP.store.build}{self.id}/card.png"

    @property
    def download_path(self) -> str:
        """Path of the self-host zip on the gallery origin: ``"/_download/<build-id>.zip"``."""
        return f"{URL_MAP.server.download}{self.id}.zip"

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


def approved_build(gallery_id: str, build_id: str) -> Build | None:
    """Build ``build_id`` of gallery ``gallery_id`` if a public address may serve it, else ``None``.

    That is a build ``ready`` with its files stored and approved (``BuildQuerySet.servable``):
    a pinned origin, a download, oEmbed and the embed panel serve no other.
    """
    return Build.objects.servable().filter(pk=build_id, gallery_id=gallery_id).first()
