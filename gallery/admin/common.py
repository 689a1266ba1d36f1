"""What the admin's pages share: permissions, the preview link, tables and scan flags as HTML, the reason form, read-only inlines, the version each row shows."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from gallery.content.preview import preview_url
from gallery.forms import too_long
from gallery.models import (
    MODERATION_REASON_MAX_LENGTH,
    Build,
    Gallery,
    Report,
)

MODERATE_PERMISSION = "gallery.moderate_gallery"


DELETE_PERMISSION = "gallery.delete_gallery"


def preview_link(build: Build | None) -> str:
    """An HTML link to ``build``'s signed preview origin (new tab), or "—" without a build."""
    if build is None:
        return "—"
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">Preview</a>', preview_url(build))


def describe_flags(flags: list[dict[str, Any]]) -> SafeString | str:
    """Data-scan flags as HTML lines: ``kind: table.column: count of sampled (example, example)``; "none" without flags."""
    if not flags:
        return "none"
    return format_html_join(
        "",
        '<div class="scan-flag"><strong>{}</strong>: {}.{}: {} of {} ({})</div>',
        (
            (
                flag.get("kind", "?"),
                flag.get("table", "?"),
                flag.get("column", "?"),
                flag.get("count", 0),
                flag.get("sampled", "?"),
                ", ".join(str(example) for example in flag.get("examples", [])),
            )
            for flag in flags
        ),
    )


def describe_tables(tables: list[dict[str, Any]], *, columns: int = 8) -> SafeString | str:
    """Tables as HTML lines: ``name (rows rows): col, col, … (+n more)``."""
    if not tables:
        return "—"

    def columns_of(table: dict[str, Any]) -> str:
        names = [str(name) for name in table.get("columns", [])]
        more = f" (+{len(names) - columns} more)" if len(names) > columns else ""
        return ", ".join(names[:columns]) + more

    return format_html_join(
        "",
        "<div><strong>{}</strong> ({} rows): {}</div>",
        ((table.get("name"), f"{int(table.get('rows', 0)):,}", columns_of(table)) for table in tables),
    )


class ReasonForm(forms.Form):
    """The reason a moderator gives for a rejection or takedown; the publisher reads it (and is emailed)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=MODERATION_REASON_MAX_LENGTH,
        error_messages=too_long("reason"),
    )


class ReadOnlyInline(admin.TabularInline):
    """Rows of a gallery shown newest first, never added, changed or deleted here."""

    extra = 0
    can_delete = False
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest, obj: Gallery | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Gallery | None = None) -> bool:
        return False


class BuildInline(ReadOnlyInline):
    """A gallery's builds."""

    model = Build
    fields = (
        "id",
        "state",
        "review",
        "approval",
        "created_at",
        "finished_at",
        "source_bytes",
        "bundle_bytes",
        "files_deleted",
    )
    readonly_fields = fields
    show_change_link = True


class ReportInline(ReadOnlyInline):
    """Readers' reports on a gallery."""

    model = Report
    fields = ("created_at", "reason", "details", "email", "page_url", "reporter")
    readonly_fields = fields

    @admin.display(description="Reporter")
    def reporter(self, report: Report) -> str:
        return report.reporter_key[:8] or "—"


class GlasshouseAdminMedia:
    """Static files of Glasshouse's admin pages: styles and scripts the app's CSP allows (no inline ones)."""

    css: ClassVar[dict[str, tuple[str, ...]]] = {"all": ("gallery/admin.css",)}
    js: ClassVar[tuple[str, ...]] = ("gallery/admin.js",)


#: Name of the hidden inputs that carry ``<gallery-id>:<build-id>`` of the version each list row showed.
REVIEWED_BUILD_FIELD = "reviewed_build"


def reviewed_builds(request: HttpRequest) -> dict[str, str]:
    """``{gallery id: build id}`` from the ``reviewed_build`` inputs of a changelist POST (malformed ones skipped)."""
    shown = {}
    for value in request.POST.getlist(REVIEWED_BUILD_FIELD):
        gallery_id, _, build_id = value.partition(":")
        if gallery_id and build_id:
            shown[gallery_id] = build_id
    return shown


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows nobody adds, changes or deletes in the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
