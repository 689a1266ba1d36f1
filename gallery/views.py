"""Views of the app origin: the gallery list, the publish form, build pages, health.

Nothing here serves uploaded bytes or bundle files; ``gallery.content`` does,
on each gallery's own origin.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from builder.catalog import DATASETTE_VERSIONS, DEFAULT_DATASETTE_VERSION, load_catalog, load_lock
from gallery import services
from gallery.forms import PublishForm
from gallery.models import FINAL_STATES, PROGRESS_STATES, Build, BuildState, Gallery

_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The public list: listed, approved galleries with a live build, newest first, 24 a page."""
    galleries = Gallery.objects.filter(
        visibility=Gallery.Visibility.LISTED,
        moderation_state=Gallery.ModerationState.APPROVED,
        live_build__isnull=False,
    ).order_by("-updated_at")
    page = Paginator(galleries, 24).get_page(request.GET.get("page"))
    return render(request, "gallery/index.html", {"page": page})


@require_GET
def plugins(request: HttpRequest) -> HttpResponse:
    """The plugin catalog: what each plugin does, its pinned version per Datasette version, what it needs."""
    rows = []
    for plugin in load_catalog().values():
        versions = []
        for datasette_version in DATASETTE_VERSIONS:
            pinned = load_lock(datasette_version)["packages"].get(plugin.name) if plugin.offered_with(datasette_version) else None
            versions.append(
                {
                    "datasette": datasette_version,
                    "pinned": pinned["version"] if pinned else "",
                    "why_not": "" if pinned else dict(plugin.not_offered).get(datasette_version, "not verified with this version"),
                }
            )
        rows.append({"plugin": plugin, "versions": versions})
    return render(
        request,
        "gallery/plugins.html",
        {"rows": rows, "datasette_versions": DATASETTE_VERSIONS, "default_version": DEFAULT_DATASETTE_VERSION},
    )


def describe_rate(rate: str) -> str:
    """Return a django-ratelimit rate in words: ``"10/h"`` -> ``"10 per hour"``, ``"5/10m"`` -> ``"5 per 10 minutes"``."""
    match = re.fullmatch(r"(\d+)/(\d*)([smhd])", rate.strip())
    if not match:
        return rate
    count, multiplier, unit = match.groups()
    if multiplier and multiplier != "1":
        return f"{count} per {multiplier} {_PERIODS[unit]}s"
    return f"{count} per {_PERIODS[unit]}"


def _upload_rate(group: str, request: HttpRequest) -> str | None:
    """Rate for django-ratelimit: signed-in users (moderators) are not limited."""
    if request.user.is_authenticated:
        return None
    return settings.UPLOAD_RATE_LIMIT


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _form_errors(form: PublishForm) -> dict[str, list[str]]:
    """``{field or "__all__": [message, ...]}``, the shape the publish page's script renders."""
    return {
        field: [str(message) for message in messages]
        for field, messages in form.errors.items()
    }


def _publish_failed(
    request: HttpRequest, form: PublishForm, status: int
) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"errors": _form_errors(form)}, status=status)
    return render(
        request, "gallery/publish.html", _publish_context(form), status=status
    )


def _refuse(
    request: HttpRequest, field: str, message: str, status: int
) -> HttpResponse:
    """Answer a POST refused before its body is read: JSON errors, or the empty form with ``message``."""
    if _wants_json(request):
        return JsonResponse({"errors": {field: [message]}}, status=status)
    return render(
        request,
        "gallery/publish.html",
        _publish_context(PublishForm(), refusal=message),
        status=status,
    )


def _publish_context(form: PublishForm, refusal: str = "") -> dict[str, object]:
    return {
        "form": form,
        "refusal": refusal,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "max_size": services.format_megabytes(settings.UPLOAD_MAX_BYTES),
    }


@csrf_exempt  # checked by _publish below, after the early refusals that must not read the body
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=_upload_rate, method="POST", block=False)
def publish(request: HttpRequest) -> HttpResponse:
    """The upload form. GET shows it; POST accepts an upload.

    A POST from the page's script (``Accept: application/json``) gets
    ``{"redirect": build_page_path}`` or ``{"errors": {field: [messages]}}`` with
    status 400 (bad upload), 413 (declared body over the limit), 429 (rate
    limited) or 503 (storage down). A plain POST gets a redirect or the form again.
    """
    if request.method == "POST":
        if getattr(request, "limited", False):
            return _refuse(
                request,
                "__all__",
                f"Too many uploads from your address: the limit is {describe_rate(settings.UPLOAD_RATE_LIMIT)}. "
                "Try again later.",
                429,
            )
        # Refuse an oversized body before Django spools it to disk.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.UPLOAD_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            try:
                services.check_size(declared)
            except services.UploadRejected as exc:
                return _refuse(request, "file", exc.args[0], 413)
    return _publish(request)


@csrf_protect
def _publish(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "gallery/publish.html", _publish_context(PublishForm()))
    form = PublishForm(request.POST, request.FILES)
    if not form.is_valid():
        return _publish_failed(request, form, 400)
    data = form.cleaned_data
    try:
        build = services.accept_upload(
            upload=data["file"],
            filename=data["file"].name,
            title=data["title"],
            description=data["description"],
            plugins=data["plugins"],
            visibility=data["visibility"],
            datasette_version=data["datasette_version"],
            metadata_text=data["metadata"],
        )
    except services.StorageUnavailable as exc:
        form.add_error(None, exc.args[0])
        return _publish_failed(request, form, 503)
    except services.UploadRejected as exc:
        form.add_error(None, exc.args[0])
        return _publish_failed(request, form, 400)
    if _wants_json(request):
        return JsonResponse({"redirect": build.get_absolute_url()})
    return redirect(build)


def build_status_data(build: Build) -> dict[str, object]:
    """The build page's live data.

    Shape: ``{"state": str, "state_label": str, "log": str, "failure_reason": str,
    "gallery_url": str | None (only when the gallery is public), "is_public": bool,
    "moderation_state": str, "finished": bool}``.
    """
    gallery = build.gallery
    return {
        "state": build.state,
        "state_label": BuildState(build.state).label,
        "log": build.log,
        "failure_reason": build.failure_reason,
        "gallery_url": gallery.url if gallery.is_public else None,
        "is_public": gallery.is_public,
        "moderation_state": gallery.moderation_state,
        "finished": build.state in FINAL_STATES,
    }


def _steps(build: Build) -> list[dict[str, str]]:
    """Progress steps, each with a status: ``done``, ``current``, ``todo``, or ``stopped`` (failed or cancelled)."""
    reached = (
        PROGRESS_STATES.index(build.state) if build.state in PROGRESS_STATES else None
    )
    steps = []
    for i, state in enumerate(PROGRESS_STATES):
        if reached is None:
            status = "stopped"
        elif i < reached or build.state == BuildState.READY:
            status = "done"
        elif i == reached:
            status = "current"
        else:
            status = "todo"
        steps.append(
            {"state": state, "label": BuildState(state).label, "status": status}
        )
    return steps


@never_cache
@require_GET
def build_detail(request: HttpRequest, build_id: str) -> HttpResponse:
    """The build page: steps, log, failure reason, and the gallery URL once public."""
    build = get_object_or_404(Build.objects.select_related("gallery"), pk=build_id)
    return render(
        request,
        "gallery/build.html",
        {
            "build": build,
            "gallery": build.gallery,
            "steps": _steps(build),
            "status": build_status_data(build),
            "progress_states": list(PROGRESS_STATES),
        },
    )


@never_cache
@require_GET
def build_status(request: HttpRequest, build_id: str) -> JsonResponse:
    """``build_status_data`` as JSON, polled by the build page every second until ``finished``."""
    build = get_object_or_404(Build.objects.select_related("gallery"), pk=build_id)
    return JsonResponse(build_status_data(build))


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe: ``ok``."""
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")
