"""Readers' reports, the audit log and publishers: readable, never edited here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from gallery.admin.common import MODERATE_PERMISSION, ReadOnlyAdmin
from gallery.models import (
    AuditEvent,
    Publisher,
    Report,
)
from gallery.services import moderation


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    """Readers' reports, newest first, each linked to its gallery."""

    list_display = ("created_at", "gallery_link", "reason", "short_details", "email")
    list_filter = ("reason",)
    list_select_related = ("gallery",)
    search_fields = ("gallery__id", "gallery__title", "details", "email")
    date_hierarchy = "created_at"

    @admin.display(description="Gallery", ordering="gallery__title")
    def gallery_link(self, report: Report) -> str:
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:gallery_gallery_change", args=[report.gallery_id]),
            report.gallery.title,
            report.gallery.get_moderation_state_display(),
        )

    @admin.display(description="Details")
    def short_details(self, report: Report) -> str:
        return Truncator(report.details).chars(120)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log: readable, never editable (the database refuses changes too)."""

    list_display = ("created_at", "action", "gallery_id", "build_id", "actor_label", "reason")
    list_filter = ("action",)
    search_fields = ("gallery_id", "build_id", "actor_label", "reason")
    date_hierarchy = "created_at"


@admin.register(Publisher)
class PublisherAdmin(ReadOnlyAdmin):
    """Publishers and whether they are trusted; trust them with the action."""

    list_display = ("user", "trusted", "trusted_at", "gallery_count")
    list_filter = ("trusted",)
    search_fields = ("user__email", "user__username")
    actions = ("trust",)

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)

    @admin.display(description="Galleries")
    def gallery_count(self, publisher: Publisher) -> int:
        return publisher.user.galleries.not_deleted().count()

    @admin.action(description="Mark selected publishers trusted", permissions=("moderate",))
    def trust(self, request: HttpRequest, queryset: QuerySet[Publisher]) -> None:
        for publisher in queryset:
            moderation.trust_publisher(publisher.user, by=request.user)
        self.message_user(request, f"Trusted {len(queryset)} publishers.", messages.SUCCESS)
