"""Builds with their state, review and log; read-only, since the worker writes them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from gallery.admin.common import MODERATE_PERMISSION, GlasshouseAdminMedia, describe_flags
from gallery.models import (
    Build,
)
from gallery.services import publishing


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    """Builds with their state and log; read-only, since builds are written by the worker."""

    list_display = (
        "id",
        "gallery_title",
        "state",
        "review",
        "approval",
        "created_at",
        "duration",
        "source_bytes",
        "bundle_bytes",
    )
    list_filter = ("state", "review", "approval", "files_deleted")
    list_select_related = ("gallery",)
    search_fields = ("id", "gallery__id", "gallery__title")
    Media = GlasshouseAdminMedia
    readonly_fields = (
        "id",
        "gallery",
        "state",
        "review",
        "approval",
        "reviewed_at",
        "reviewed_by",
        "bundle_settings",
        "build_page",
        "failure_reason",
        "warning_list",
        "log_text",
        "scan",
        "source_key",
        "source_sha256",
        "source_bytes",
        "bundle_bytes",
        "files_deleted",
        "created_at",
        "started_at",
        "finished_at",
    )
    exclude = ("log", "tables", "scan_flags", "warnings")
    actions = ("cancel_builds",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Build | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Build | None = None) -> bool:
        return False

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)

    @admin.display(description="Gallery", ordering="gallery__title")
    def gallery_title(self, build: Build) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:gallery_gallery_change", args=[build.gallery_id]), build.gallery.title
        )

    @admin.display(description="Duration")
    def duration(self, build: Build) -> str:
        if build.started_at and build.finished_at:
            return f"{(build.finished_at - build.started_at).total_seconds():.0f} s"
        return "—"

    @admin.display(description="Build page")
    def build_page(self, build: Build) -> str:
        return format_html('<a href="{}">{}</a>', build.get_absolute_url(), build.get_absolute_url())

    @admin.display(description="Log")
    def log_text(self, build: Build) -> str:
        return format_html('<pre class="build-log">{}</pre>', build.log)

    @admin.display(description="Warnings")
    def warning_list(self, build: Build) -> SafeString | str:
        """The database check's warnings for the publisher (``Build.warnings``), one per line; "none" without."""
        if not build.warnings:
            return "none"
        return format_html_join("", "<div>{}</div>", ((warning,) for warning in build.warnings))

    @admin.display(description="Data scan")
    def scan(self, build: Build) -> SafeString | str:
        return describe_flags(build.scan_flags)

    @admin.action(description="Cancel selected builds", permissions=("moderate",))
    def cancel_builds(self, request: HttpRequest, queryset: QuerySet[Build]) -> None:
        cancelled = sum(1 for build in queryset if publishing.cancel(build))
        self.message_user(request, f"Cancelled {cancelled} builds.", messages.SUCCESS)
