"""The moderation queue: what waits for a moderator, with what they decide on."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from builder.sqlite_check import format_megabytes
from gallery.admin.common import describe_flags, describe_tables, preview_link
from gallery.admin.galleries import GalleryAdmin
from gallery.models import (
    Gallery,
    GalleryQuerySet,
    Submission,
)


@admin.register(Submission)
class ModerationQueueAdmin(GalleryAdmin):
    """The queue: what each submission holds, so a moderator can decide from the list."""

    list_display = (
        "submission",
        "moderation_state",
        "publisher",
        "version_to_review",
        "size",
        "tables",
        "plugin_list",
        "preview",
        "report_count",
        "flags",
        "created_at",
    )
    list_display_links = ("submission",)
    list_filter = ("moderation_state",)
    ordering = ("created_at",)  # oldest first: first come, first served
    date_hierarchy = None

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        title = "Moderation queue: open a submission's preview, then approve, reject or take it down"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_queryset(self, request: HttpRequest) -> QuerySet[Gallery]:
        galleries = super().get_queryset(request)
        assert isinstance(galleries, GalleryQuerySet)
        return galleries.awaiting_review()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_moderate_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Gallery | None = None) -> bool:
        return self.has_moderate_permission(request)

    @admin.display(description="Submission", ordering="title")
    def submission(self, gallery: Gallery) -> str:
        """The title and description of the version to review (what approval publishes), else the gallery's."""
        shown = self._review(gallery) or gallery
        return format_html(
            "<strong>{}</strong><br><small>{}</small>",
            shown.title,
            Truncator(shown.description).chars(200) or "(no description)",
        )

    @admin.display(description="Size")
    def size(self, gallery: Gallery) -> str:
        build = self._review(gallery)
        return format_megabytes(build.source_bytes) if build else "—"

    @admin.display(description="Tables (rows): columns")
    def tables(self, gallery: Gallery) -> SafeString | str:
        build = self._review(gallery)
        return describe_tables(build.tables if build else [], columns=4)

    @admin.display(description="Plugins")
    def plugin_list(self, gallery: Gallery) -> str:
        build = self._review(gallery)
        return ", ".join(build.plugins if build else gallery.plugins) or "none"

    @admin.display(description="Preview")
    def preview(self, gallery: Gallery) -> str:
        build = self._review(gallery)
        return preview_link(build) if build else "not built yet"

    @admin.display(description="Data scan")
    def flags(self, gallery: Gallery) -> SafeString | str:
        build = self._review(gallery)
        return describe_flags(build.scan_flags) if build else "—"
