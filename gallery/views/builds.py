"""The build page and its status JSON, polled while a build runs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gallery.models import FINAL_STATES, PROGRESS_STATES, Build, BuildState
from gallery.views import mine

#: The build page's note for a build that could not reach the build queue (the broker was down).
QUEUE_NOTE = (
    "Waiting for the build queue, which could not be reached. Nothing is lost: "
    "the build starts by itself once the queue is back, and you need not publish again."
)


def build_status_data(build: Build, *, with_log: bool) -> dict[str, object]:
    """The build page's live data.

    Shape: ``{"state": str, "state_label": str, "log": str | None, "failure_reason": str,
    "gallery_url": str | None (only when the gallery is public), "gallery_page": str | None
    (path of its page on the app origin, only when public), "is_public": bool,
    "moderation_state": str, "finished": bool, "queue_note": str, "warnings": [str],
    "tables": [{"name": str, "rows": int, "columns": [{"name": str, "type": str}]}] | None}``;
    ``log`` and ``tables`` (what the build made: ``Build.tables``, with each column's declared
    type where the build recorded it, else ``""``) are ``None`` unless ``with_log``
    (``mine.may_see_build_log``: a crashed build's log holds a traceback, an unreviewed build's
    tables are not public yet, and anyone may know a build id); ``queue_note`` is empty unless the
    build waits for a build queue that could not be reached (``Build.waits_for_queue``);
    ``warnings`` are ``Build.warnings`` (e.g. a WAL-mode upload).
    """
    gallery = build.gallery
    return {
        "state": build.state,
        "state_label": BuildState(build.state).label,
        "log": build.log if with_log else None,
        "failure_reason": build.failure_reason,
        "gallery_url": gallery.url if gallery.is_public else None,
        "gallery_page": reverse("gallery:detail", args=[gallery.id]) if gallery.is_public else None,
        "is_public": gallery.is_public,
        "moderation_state": gallery.moderation_state,
        "finished": build.state in FINAL_STATES,
        "queue_note": QUEUE_NOTE if build.waits_for_queue else "",
        "warnings": list(build.warnings),
        "tables": made_tables(build) if with_log else None,
    }


def made_tables(build: Build) -> list[dict[str, object]]:
    """``build.tables`` for the build page: ``[{"name", "rows", "columns": [{"name", "type"}]}]``.

    Builds made before column types were recorded (no ``"types"``) show ``""`` for each type.
    """
    made = []
    for table in build.tables:
        columns = [str(name) for name in table.get("columns", [])]
        types = [str(kind) for kind in table.get("types", [])]
        types += [""] * (len(columns) - len(types))
        made.append({
            "name": str(table.get("name", "")), "rows": int(table.get("rows", 0)),
            "columns": [{"name": name, "type": kind} for name, kind in zip(columns, types, strict=False)],
        })  # fmt: skip
    return made


def _steps(build: Build) -> list[dict[str, str]]:
    """Progress steps, each with a status: ``done``, ``current``, ``todo``, or ``stopped`` (failed or cancelled)."""
    reached = PROGRESS_STATES.index(build.state) if build.state in PROGRESS_STATES else None
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
        steps.append({"state": state, "label": BuildState(state).label, "status": status})
    return steps


@never_cache
@require_GET
def build_detail(request: HttpRequest, build_id: str) -> HttpResponse:
    """The build page: steps, failure reason, warnings, the gallery URL once public, and the
    log for who may see it (``mine.may_see_build_log``; others get a line saying so).

    Right after an anonymous upload it shows the gallery's private management link, once:
    the link is made for this response (``mine.new_link_to_show``).
    """
    build = get_object_or_404(Build.objects.select_related("gallery"), pk=build_id)
    management_link = mine.new_link_to_show(request, build)  # first: it grants this session
    return render(
        request,
        "gallery/build.html",
        {
            "management_link": management_link,
            "build": build,
            "gallery": build.gallery,
            "steps": _steps(build),
            "status": build_status_data(build, with_log=mine.may_see_build_log(request, build.gallery)),
            "progress_states": list(PROGRESS_STATES),
        },
    )


@never_cache
@require_GET
def build_status(request: HttpRequest, build_id: str) -> JsonResponse:
    """``build_status_data`` as JSON, polled by the build page every second until ``finished``.

    ``log`` is ``null`` unless the request may see it (``mine.may_see_build_log``).
    """
    build = get_object_or_404(Build.objects.select_related("gallery"), pk=build_id)
    return JsonResponse(build_status_data(build, with_log=mine.may_see_build_log(request, build.gallery)))
