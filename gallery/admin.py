"""Moderation in the Django admin: the queue, galleries, builds, reports, publishers, the audit log.

Every decision calls ``gallery.services`` (approve, reject, take down, delete, trust,
rebuild); the admin holds no rules of its own and edits no moderation field directly.
Galleries are read-only here: their state changes only through the actions, offered on
the change lists (bulk) and as buttons on each gallery's page.

Moderators are staff users in the "Moderators" group (migration 0005): they can view
galleries, builds, reports, publishers and the audit log, and act with the
``gallery.moderate_gallery`` permission. Deleting a gallery (a tombstone) needs
``gallery.delete_gallery``; the audit log cannot be changed by anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from builder.sqlite_check import format_megabytes
from gallery.forms import too_long
from gallery.models import (
    MODERATION_REASON_MAX_LENGTH,
    AuditEvent,
    Build,
    BuildReview,
    Gallery,
    Publisher,
    Report,
    Submission,
    is_trusted,
)
from gallery.services import moderation, publishing, reports

State = Gallery.ModerationState
MODERATE_PERMISSION = "gallery.moderate_gallery"
DELETE_PERMISSION = "gallery.delete_gallery"


def preview_link(build: Build | None) -> str:
    """An HTML link to ``build``'s signed preview origin (new tab), or "—" without a build."""
    if build is None:
        return "—"
    from gallery.content.preview import preview_url

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
    list_filter = ("moderation_state", "visibility", "datasette_version")
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
    date_hierarchy = "created_at"
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
        if gallery.owner_id:
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
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
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
                can_approve=review is not None
                and (
                    (State.APPROVED in targets)
                    or review.review == BuildReview.PENDING
                    or gallery.held_at is not None
                    or reports.has_unreviewed_reports(gallery)
                ),
                can_reject=State.REJECTED in targets,
                can_take_down=State.TAKEN_DOWN in targets,
                can_trust=gallery.owner_id is not None and not is_trusted(gallery.owner),
                audit_events=AuditEvent.objects.filter(gallery_id=gallery.pk)[:50],
                moderate_url=reverse("admin:gallery_gallery_moderate", args=[gallery.pk]),
            )
        return super().change_view(request, object_id, form_url, extra_context=context)


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


def awaiting_review(galleries: QuerySet[Gallery]) -> QuerySet[Gallery]:
    """Galleries a moderator must look at: pending ones, approved ones whose new version waits
    for review, that readers reported since the last decision (or that reports held), and rejected ones whose publisher uploaded a corrected version."""
    waiting = Build.objects.reviewable().filter(gallery=OuterRef("pk"))
    # Newer than the live build: an older one waiting was superseded unreviewed (never served).
    newer_than_live = waiting.filter(created_at__gt=OuterRef("live_build__created_at"))
    return galleries.alias(
        has_waiting_version=Exists(waiting),
        has_new_version=Exists(newer_than_live),
        has_new_reports=reports.unreviewed_reports_filter(),
    ).filter(
        Q(moderation_state=State.PENDING)
        | Q(moderation_state=State.APPROVED, has_new_version=True)
        | Q(moderation_state=State.APPROVED, live_build__isnull=True, has_waiting_version=True)
        | Q(moderation_state=State.APPROVED, held_at__isnull=False)
        | Q(moderation_state=State.APPROVED, has_new_reports=True)
        | Q(moderation_state=State.REJECTED, has_waiting_version=True)
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
        return awaiting_review(super().get_queryset(request))

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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows nobody adds, changes or deletes in the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        return publisher.user.galleries.exclude(moderation_state=State.DELETED).count()

    @admin.action(description="Mark selected publishers trusted", permissions=("moderate",))
    def trust(self, request: HttpRequest, queryset: QuerySet[Publisher]) -> None:
        for publisher in queryset:
            moderation.trust_publisher(publisher.user, by=request.user)
        self.message_user(request, f"Trusted {len(queryset)} publishers.", messages.SUCCESS)
