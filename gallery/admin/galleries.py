"""Every gallery, read-only, with the moderation actions (bulk and per gallery)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from gallery.admin.common import (
    DELETE_PERMISSION,
    MODERATE_PERMISSION,
    REVIEWED_BUILD_FIELD,
    BuildInline,
    GlasshouseAdminMedia,
    ReasonForm,
    ReportInline,
    describe_flags,
    describe_tables,
    preview_link,
    reviewed_builds,
)
from gallery.models import (
    AuditEvent,
    Build,
    BuildReview,
    Gallery,
    ModerationState,
    is_trusted,
)
from gallery.services import moderation, publishing


@admin.register(Gallery)
class GalleryAdmin(admin.ModelAdmin):
    """Every gallery, read-only, with the moderation actions (bulk and per gallery)."""

    list_display = (
        "title",
        "id",
        "moderation_state",
        "visibility",
        "publisher",
        "live_build_state",
        "version_to_review",
        "gallery_link",
        "report_count",
        "view_count",
        "created_at",
    )
    list_filter: ClassVar[tuple[str, ...]] = ("moderation_state", "visibility", "datasette_version")
    list_select_related = ("live_build", "owner")
    search_fields = ("id", "title", "description", "owner__email")
    fields = (
        "id",
        "title",
        "description",
        "publisher",
        "visibility",
        "moderation_state",
        "moderation_reason",
        "gallery_link",
        "live_build",
        "database_name",
        "plugins",
        "metadata",
        "datasette_version",
        "view_count",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = (BuildInline, ReportInline)
    actions = (
        "approve_galleries",
        "reject_galleries",
        "take_down_galleries",
        "trust_publishers",
        "rebuild_galleries",
        "delete_galleries",
    )
    date_hierarchy: ClassVar[str | None] = "created_at"
    change_form_template = "admin/gallery/gallery/moderation_change_form.html"
    Media = GlasshouseAdminMedia

    # --- permissions: read-only rows; decisions through the actions ---------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Gallery]:
        # Builds prefetched: each row names the version to review (moderation.build_to_review).
        return (
            super().get_queryset(request).annotate(report_total=Count("reports", distinct=True)).prefetch_related("builds")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # galleries come from uploads

    def has_change_permission(self, request: HttpRequest, obj: Gallery | None = None) -> bool:
        return False  # no field is edited here: see the actions

    def has_delete_permission(self, request: HttpRequest, obj: Gallery | None = None) -> bool:
        return False  # deletion leaves a tombstone: the delete_galleries action

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MODERATE_PERMISSION)

    def has_tombstone_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DELETE_PERMISSION)

    # --- columns -------------------------------------------------------------------------------

    @admin.display(description="Publisher", ordering="owner__email")
    def publisher(self, gallery: Gallery) -> str:
        if gallery.owner is not None:
            trusted = " (trusted)" if is_trusted(gallery.owner) else ""
            return f"{gallery.owner.email or gallery.owner.get_username()}{trusted}"
        return (
            f"anonymous, IP hash {gallery.uploader_ip_hash[:8]}" if gallery.uploader_ip_hash else "operator or unknown"
        )

    @admin.display(description="Live build", ordering="live_build__state")
    def live_build_state(self, gallery: Gallery) -> str:
        build = gallery.live_build
        return f"{build.id} ({build.state})" if build else "—"

    @admin.display(description="Version to review")
    def version_to_review(self, gallery: Gallery) -> str:
        """The id of the build ``approve`` would approve (``moderation.build_to_review``), with a hidden
        ``reviewed_build`` = ``<gallery-id>:<build-id>`` input the bulk approval reads, so it approves
        exactly the version this list showed."""
        build = self._review(gallery)
        if build is None:
            return "not built yet"
        return format_html(
            '{}<input type="hidden" name="{}" value="{}:{}">', build.pk, REVIEWED_BUILD_FIELD, gallery.pk, build.pk
        )

    def _review(self, gallery: Gallery) -> Build | None:
        return moderation.build_to_review(gallery)

    @admin.display(description="URL")
    def gallery_link(self, gallery: Gallery) -> str:
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', gallery.url, gallery.url)

    @admin.display(description="Reports", ordering="report_total")
    def report_count(self, gallery: Gallery) -> int:
        return getattr(gallery, "report_total", None) or gallery.reports.count()

    # --- actions (bulk) ------------------------------------------------------------------------

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Gallery], act: Callable[[Gallery], object], done: str
    ) -> None:
        """Call ``act`` on each gallery; report refusals one by one and the count of successes."""
        count = 0
        for gallery in queryset:
            try:
                act(gallery)
            except (moderation.InvalidTransition, ValueError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done.format(count=count), messages.SUCCESS)

    @admin.action(description="Approve selected galleries (the version each row shows)", permissions=("moderate",))
    def approve_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> None:
        """Approve, for each selected gallery, the build its row showed (``reviewed_build`` inputs)."""
        shown = reviewed_builds(request)

        def approve(gallery: Gallery) -> None:
            if gallery.pk not in shown:
                raise ValueError(
                    f"“{gallery.title}”: this list did not show a version to approve. Open the moderation queue "
                    "(or the gallery's page), review the version it shows, and approve it there."
                )
            moderation.approve(gallery, build=shown[gallery.pk], by=request.user)

        self._each(request, queryset, approve, "Approved {count} galleries.")

    def _with_reason(
        self,
        request: HttpRequest,
        queryset: QuerySet[Gallery],
        action: str,
        verb: str,
        act: Callable[..., None],
        done: str,
    ) -> HttpResponse | None:
        """Ask for a reason on an intermediate page, then call ``act(gallery, reason, by=user)`` for each."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(request, queryset, lambda g: act(g, reason, by=request.user), done)
            return None
        return TemplateResponse(
            request,
            "admin/gallery/reject_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{verb} galleries",
                "verb": verb,
                "galleries": queryset,
                "form": form,
                "action": action,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Reject selected galleries (with a reason)…", permissions=("moderate",))
    def reject_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> HttpResponse | None:
        return self._with_reason(
            request, queryset, "reject_galleries", "Reject", moderation.reject,
            "Rejected {count} galleries; their publishers were emailed.",
        )  # fmt: skip

    @admin.action(description="Take down selected galleries (with a reason)…", permissions=("moderate",))
    def take_down_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> HttpResponse | None:
        return self._with_reason(
            request, queryset, "take_down_galleries", "Take down", moderation.take_down,
            "Took down {count} galleries: their addresses now answer 410 and clear readers' caches.",
        )  # fmt: skip

    @admin.action(description="Mark the publishers of selected galleries trusted", permissions=("moderate",))
    def trust_publishers(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> None:
        def trust(gallery: Gallery) -> None:
            if gallery.owner is None:
                raise ValueError(f"“{gallery.title}” was uploaded anonymously: there is no account to trust.")
            moderation.trust_publisher(gallery.owner, by=request.user)

        self._each(request, queryset, trust, "Trusted the publishers of {count} galleries.")

    @admin.action(description="Rebuild selected galleries", permissions=("moderate",))
    def rebuild_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> None:
        self._each(
            request, queryset, lambda g: publishing.rebuild(g, by=request.user), "Queued a rebuild of {count} galleries."
        )

    @admin.action(description="Delete selected galleries (leaves a tombstone)", permissions=("tombstone",))
    def delete_galleries(self, request: HttpRequest, queryset: QuerySet[Gallery]) -> None:
        self._each(
            request, queryset, lambda g: moderation.delete_gallery(g, by=request.user),
            "Deleted {count} galleries: their ids stay taken and their addresses answer 410.",
        )  # fmt: skip

    # --- the gallery's own page: facts for the decision and one button per allowed action ----

    def get_urls(self) -> list[Any]:
        name = f"{self.model._meta.app_label}_{self.model._meta.model_name}_moderate"
        return [
            path("<str:object_id>/moderate/", self.admin_site.admin_view(self.moderate_view), name=name),
            *super().get_urls(),
        ]

    def moderate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST ``do`` = approve | reject | take_down | trust | delete (with ``reason`` where needed)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        gallery = get_object_or_404(Gallery, pk=object_id)
        do = request.POST.get("do", "")
        allowed = self.has_tombstone_permission(request) if do == "delete" else self.has_moderate_permission(request)
        if not allowed:
            self.message_user(request, "You do not have permission to do that.", messages.ERROR)
        else:
            acts: dict[str, tuple[Callable[[], object], str]] = {
                "approve": (
                    lambda: moderation.approve(gallery, build=request.POST.get("build", ""), by=request.user),
                    "Approved.",
                ),
                "reject": (
                    lambda: moderation.reject(gallery, request.POST.get("reason", ""), by=request.user),
                    "Rejected; the publisher was emailed.",
                ),
                "take_down": (
                    lambda: moderation.take_down(gallery, request.POST.get("reason", ""), by=request.user),
                    "Taken down.",
                ),
                "trust": (lambda: self.trust_publishers(request, Gallery.objects.filter(pk=gallery.pk)), ""),
                "delete": (lambda: moderation.delete_gallery(gallery, by=request.user), "Deleted (tombstone)."),
            }
            if do not in acts:
                self.message_user(request, f"Unknown action {do!r}.", messages.ERROR)
            else:
                act, done = acts[do]
                try:
                    act()
                except (moderation.InvalidTransition, ValueError) as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    if done:
                        self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:gallery_gallery_change", args=[gallery.pk]))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        gallery = Gallery.objects.filter(pk=object_id).first()
        context = dict(extra_context or {})
        if gallery is not None:
            review = moderation.build_to_review(gallery)
            targets = moderation.TRANSITIONS.get(gallery.moderation_state, frozenset())
            context.update(
                review_build=review,
                review_preview=preview_link(review)
                if review and not gallery.is_deleted and review.review != BuildReview.REJECTED
                else "",
                review_tables=describe_tables(review.tables if review else [], columns=40),
                review_flags=describe_flags(review.scan_flags if review else []),
                can_moderate=self.has_moderate_permission(request),
                can_delete_gallery=self.has_tombstone_permission(request) and not gallery.is_deleted,
                can_approve=moderation.approval_refusal(gallery, review) is None,
                can_reject=ModerationState.REJECTED in targets,
                can_take_down=ModerationState.TAKEN_DOWN in targets,
                can_trust=gallery.owner_id is not None and not is_trusted(gallery.owner),
                audit_events=AuditEvent.objects.filter(gallery_id=gallery.pk)[:50],
                moderate_url=reverse("admin:gallery_gallery_moderate", args=[gallery.pk]),
            )
        return super().change_view(request, object_id, form_url, extra_context=context)
