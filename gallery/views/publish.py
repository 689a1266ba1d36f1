"""The publish form: refusals before the body is read, the upload, and the answer to the page's script."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from builder.sqlite_check import format_megabytes
from gallery import upload_limits
from gallery.forms import PublishForm
from gallery.ratelimits import UPLOAD_RATE_GROUP, client_ip, too_many_uploads_message, upload_rate
from gallery.services import galleries, uploads
from gallery.views import mine

#: Why the publish form refuses someone signed out when ``ANONYMOUS_UPLOADS`` is off.
LOG_IN_TO_PUBLISH = "Log in or sign up to publish: this Glasshouse takes uploads from accounts only."


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _form_errors(form: PublishForm) -> dict[str, list[str]]:
    """``{field or "__all__": [message, ...]}``, the shape the publish page's script renders."""
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}


def _publish_failed(request: HttpRequest, form: PublishForm, status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"errors": _form_errors(form)}, status=status)
    return render(request, "gallery/publish.html", _publish_context(form), status=status)


def _refuse(request: HttpRequest, field: str, message: str, status: int) -> HttpResponse:
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
        "anonymous_uploads": settings.ANONYMOUS_UPLOADS,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "max_size": format_megabytes(settings.UPLOAD_MAX_BYTES),
    }


@csrf_exempt  # checked by _publish below, after the early refusals that must not read the body
@require_http_methods(["GET", "POST"])
@ratelimit(group=UPLOAD_RATE_GROUP, key="ip", rate=upload_rate, method="POST", block=False)
def publish(request: HttpRequest) -> HttpResponse:
    """The upload form. GET shows it; POST accepts an upload.

    A POST from the page's script (``Accept: application/json``) gets
    ``{"redirect": build_page_path}`` or ``{"errors": {field: [messages]}}`` with
    status 400 (bad upload, or more than one file), 411 (no ``Content-Length``), 413
    (body or file over the limit: ``gallery.upload_limits``), 429 (rate limited) or 503
    (storage down). A plain POST gets a redirect or the form again; after the body was
    read, the form keeps what the publisher typed.
    """
    if request.method == "POST":
        if not settings.ANONYMOUS_UPLOADS and not request.user.is_authenticated:
            return _refuse(request, "__all__", LOG_IN_TO_PUBLISH, 403)
        # Refuse over the rate limit, or an oversized body, before Django spools it to disk.
        limited = (lambda: getattr(request, "limited", False), too_many_uploads_message)
        refusal = upload_limits.refusal_before_reading(request, [limited])
        if refusal is not None:
            return _refuse(request, refusal.field, refusal.message, refusal.status)
    return _publish(request)


@csrf_protect
def _publish(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "gallery/publish.html", _publish_context(PublishForm()))
    refusal = upload_limits.refusal_after_reading(request)
    form = PublishForm(request.POST, request.FILES)
    if refusal is not None:
        upload_limits.show_refusal(form, refusal)
        return _publish_failed(request, form, refusal.status)
    if not form.is_valid():
        return _publish_failed(request, form, 400)
    data = form.cleaned_data
    try:
        build = galleries.accept_upload(
            upload=data["file"],
            filename=data["file"].name,
            **form.settings_arguments(),
            owner=request.user,
            uploader_ip=client_ip(request),
        )
    except uploads.StorageUnavailable as exc:
        form.add_error(None, exc.args[0])
        return _publish_failed(request, form, 503)
    except uploads.UploadRejected as exc:
        form.add_error(None, exc.args[0])
        return _publish_failed(request, form, 400)
    if not request.user.is_authenticated:
        mine.remember_new_upload(request, build)  # the build page makes and shows the link, once
    if _wants_json(request):
        return JsonResponse({"redirect": build.get_absolute_url()})
    return redirect(build)
