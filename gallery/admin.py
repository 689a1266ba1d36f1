"""Moderation in the Django admin: approve, reject, take down and rebuild galleries.

Every action calls ``gallery.services``; the admin holds no rules of its own.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from gallery import services
from gallery.models import Build, Gallery


class BuildInline(admin.TabularInline):
    """A gallery's builds, newest first, read-only."""

    model = Build
    fields = (
        "id",
        "state",
        "created_at",
        "finished_at",
        "source_bytes",
        "bundle_bytes",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)

    def has_add_permission(
        self, request: HttpRequest, obj: Gallery | None = None
    ) -> bool:
        return False


class RejectForm(forms.Form):
    """The reason a moderator gives when rejecting galleries; shown to the publisher."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), max_length=2000
    )


@admin.register(Gallery)
class GalleryAdmin(admin.ModelAdmin):
    """Galleries with their moderation state and live build."""

    list_display = (
        "title",
        "id",
        "moderation_state",
        "visibility",
        "live_build_state",
        "gallery_link",
        "created_at",
    )
    list_filter = ("moderation_state", "visibility", "datasette_version")
    list_select_related = ("live_build",)
    search_fields = ("id", "title", "description")
    readonly_fields = (
        "id",
        "gallery_link",
        "live_build",
        "database_name",
        "created_at",
        "updated_at",
    )
    fields = (
        "id",
        "title",
        "description",
        "visibility",
        "moderation_state",
        "moderation_reason",
        "gallery_link",
        "live_build",
        "database_name",
        "plugins",
        "datasette_version",
        "created_at",
        "updated_at",
    )
    inlines = (BuildInline,)
    actions = (
        "approve_galleries",
        "reject_galleries",
        "take_down_galleries",
        "rebuild_galleries",
    )
    date_hierarchy = "created_at"

    @admin.display(description="Live build", ordering="live_build__state")
    def live_build_state(self, gallery: Gallery) -> str:
        build = gallery.live_build
        return f"{build.id} ({build.state})" if build else "—"

    @admin.display(description="URL")
    def gallery_link(self, gallery: Gallery) -> str:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            gallery.url,
            gallery.url,
        )

    @admin.action(description="Approve selected galleries")
    def approve_galleries(
        self, request: HttpRequest, queryset: QuerySet[Gallery]
    ) -> None:
        count = 0
        for gallery in queryset:
            try:
                services.approve(gallery, by=request.user)
            except services.InvalidTransition as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"Approved {count} galleries.", messages.SUCCESS)

    def _act_with_reason(
        self, request: HttpRequest, queryset: QuerySet[Gallery], action: str, title: str, act, done: str
    ) -> HttpResponse | None:
        """Ask for a reason on an intermediate page, then call ``act(gallery, reason, by=user)`` for each."""
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            count = 0
            for gallery in queryset:
                try:
                    act(gallery, form.cleaned_data["reason"], by=request.user)
                except services.InvalidTransition as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    count += 1
            self.message_user(request, done.format(count=count), messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/gallery/reject_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "galleries": queryset,
                "form": form,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Reject selected galleries…")
    def reject_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> HttpResponse | None:
        return self._act_with_reason(
            request, queryset, "reject_galleries", "Reject galleries", services.reject, "Rejected {count} galleries."
        )

    @admin.action(description="Take down selected galleries…")
    def take_down_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> HttpResponse | None:
        return self._act_with_reason(
            request, queryset, "take_down_galleries", "Take down galleries", services.take_down,
            "Took down {count} galleries: their addresses now answer 410 and clear readers' caches.",
        )  # fmt: skip

    @admin.action(description="Rebuild selected galleries")
    def rebuild_galleries(
        self, request: HttpRequest, queryset: QuerySet[Gallery]
    ) -> None:
        for gallery in queryset:
            try:
                build = services.rebuild(gallery, by=request.user)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    format_html(
                        'Queued <a href="{}">build {}</a> of “{}”.',
                        build.get_absolute_url(),
                        build.id,
                        gallery.title,
                    ),
                    messages.SUCCESS,
                )


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    """Builds with their state and log; read-only, since builds are written by the worker."""

    list_display = (
        "id",
        "gallery_title",
        "state",
        "created_at",
        "duration",
        "source_bytes",
        "bundle_bytes",
    )
    list_filter = ("state",)
    list_select_related = ("gallery",)
    search_fields = ("id", "gallery__id", "gallery__title")
    readonly_fields = (
        "id",
        "gallery",
        "state",
        "build_page",
        "failure_reason",
        "log_text",
        "source_key",
        "source_sha256",
        "source_bytes",
        "bundle_bytes",
        "created_at",
        "started_at",
        "finished_at",
    )
    exclude = ("log",)
    actions = ("cancel_builds",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Gallery", ordering="gallery__title")
    def gallery_title(self, build: Build) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:gallery_gallery_change", args=[build.gallery_id]),
            build.gallery.title,
        )

    @admin.display(description="Duration")
    def duration(self, build: Build) -> str:
        if build.started_at and build.finished_at:
            return f"{(build.finished_at - build.started_at).total_seconds():.0f} s"
        return "—"

    @admin.display(description="Build page")
    def build_page(self, build: Build) -> str:
        return format_html(
            '<a href="{}">{}</a>', build.get_absolute_url(), build.get_absolute_url()
        )

    @admin.display(description="Log")
    def log_text(self, build: Build) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap; max-height: 40rem; overflow: auto">{}</pre>',
            build.log,
        )

    @admin.action(description="Cancel selected builds")
    def cancel_builds(self, request: HttpRequest, queryset: QuerySet[Build]) -> None:
        cancelled = sum(1 for build in queryset if services.cancel(build))
        self.message_user(request, f"Cancelled {cancelled} builds.", messages.SUCCESS)
