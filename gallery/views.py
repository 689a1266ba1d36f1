"""Views of the app origin: the gallery list, gallery pages (embed, share, download), oEmbed,
``/embed.js``, the publish form, build pages, health.

Nothing here serves uploaded bytes or bundle files; ``gallery.content`` does,
on each gallery's own origin.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from builder.catalog import DATASETTE_VERSIONS, DEFAULT_DATASETTE_VERSION, load_catalog, load_lock
from builder.sqlite_check import format_megabytes
from gallery import embed, health, publisher, upload_limits
from gallery.forms import PublishForm, ReportForm
from gallery.models import FINAL_STATES, PROGRESS_STATES, Build, BuildState, Gallery, approved_build
from gallery.ratelimits import UPLOAD_RATE_GROUP, client_ip, describe_rate, too_many_uploads_message, upload_rate
from gallery.services import galleries, reports, uploads

#: Galleries per page of the front page.
GALLERIES_PER_PAGE = 12


def public_galleries() -> QuerySet[Gallery]:
    """Galleries readers may open (``GalleryQuerySet.public``: approved, not held, an approved live
    build), listed or not, live build joined. Public pages show the live build's own title,
    description and plugins (``Build.bundle_settings``), which a moderator approved."""
    return Gallery.objects.public().select_related("live_build")


def search_galleries(galleries: QuerySet[Gallery], query: str) -> QuerySet[Gallery]:
    """Narrow ``galleries`` to those whose live build's title, description or a table name contains ``query``.

    Case-insensitive substring match. Table names live in ``Build.tables`` (JSON), so they
    are matched in Python over the given galleries' live builds.
    """
    query = query.strip()
    if not query:
        return galleries
    needle = query.casefold()
    by_table = [
        gallery_id
        for gallery_id, tables in galleries.values_list("id", "live_build__tables")
        if any(needle in str(table.get("name", "")).casefold() for table in tables or [])
    ]
    return galleries.filter(
        Q(live_build__bundle_settings__title__icontains=query)
        | Q(live_build__bundle_settings__description__icontains=query)
        | Q(id__in=by_table)
    )


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The front page: listed public galleries as cards, newest first, searchable (``?q=``), 12 a page."""
    query = request.GET.get("q", "").strip()
    galleries = search_galleries(public_galleries().filter(visibility=Gallery.Visibility.LISTED), query).order_by(
        "-updated_at", "id"
    )
    page = Paginator(galleries, GALLERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "gallery/index.html", {"page": page, "q": query})


def _public_gallery(gallery_id: str) -> Gallery:
    """The public gallery ``gallery_id``; raises ``Http404`` if unknown, not approved or not built."""
    gallery = public_galleries().filter(pk=gallery_id).first()
    if gallery is None:
        raise Http404("No public gallery has this address.")
    return gallery


def _canned_queries(gallery: Gallery) -> list[dict[str, Any]]:
    """The canned queries of the gallery's live build's metadata: ``[{"name", "title", "params": [str]}]``."""
    metadata = gallery.live_build.metadata if gallery.live_build else {}
    database = (metadata.get("databases") or {}).get(gallery.database_name) or {}
    queries = []
    for name, query in (database.get("queries") or {}).items():
        query = query if isinstance(query, dict) else {"sql": str(query)}
        params = query.get("params") or embed.named_parameters(str(query.get("sql", "")))
        queries.append({"name": name, "title": query.get("title") or name, "params": list(params)})
    return queries


#: Shown to readers and link previews when a gallery has no description.
DEFAULT_SUMMARY = "A SQLite database you can explore, query and embed; it runs in your browser."


def share_tags(title: str, page_url: str, summary: str, card_url: str) -> list[tuple[str, str, str]]:
    """Open Graph and Twitter card tags of a gallery page titled ``title``: ``[(attribute, key, content)]``.

    ``attribute`` is ``"property"`` (Open Graph) or ``"name"`` (Twitter). With a ``card_url``
    (absolute URL of the 1200×630 card) the Twitter card is ``summary_large_image``, else ``summary``.
    """
    tags = [
        ("property", "og:type", "website"),
        ("property", "og:site_name", "Glasshouse"),
        ("property", "og:title", title),
        ("property", "og:description", summary),
        ("property", "og:url", page_url),
        ("name", "twitter:card", "summary_large_image" if card_url else "summary"),
        ("name", "twitter:title", title),
        ("name", "twitter:description", summary),
    ]
    if card_url:
        tags += [
            ("property", "og:image", card_url),
            ("property", "og:image:width", "1200"),
            ("property", "og:image:height", "630"),
            ("property", "og:image:alt", f"{title}: its tables and row counts"),
            ("name", "twitter:image", card_url),
        ]
    return tags


def _page_url(gallery: Gallery) -> str:
    return settings.APP_URL + reverse("gallery:detail", args=[gallery.id])


@require_GET
def gallery_detail(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """A public gallery's page: facts, Open, Embed, Share, Download and Report. 404 unless public."""
    gallery = _public_gallery(gallery_id)
    build = gallery.live_build
    assert build is not None  # public_galleries() has a live build
    target = embed.EmbedTarget(gallery_id=gallery.id)
    page_url = _page_url(gallery)
    card_url = gallery.url.rstrip("/") + build.card_path if build.has_card else ""
    summary = Truncator(build.description or DEFAULT_SUMMARY).chars(300)
    return render(
        request,
        "gallery/detail.html",
        {
            "gallery": gallery,
            "build": build,
            "tables": build.tables,
            "queries": _canned_queries(gallery),
            "page_url": page_url,
            "card_url": card_url,
            # Crawlers run no Service Worker, so the page itself asks them not to index what is hidden.
            "noindex": gallery.visibility == Gallery.Visibility.UNLISTED or "datasette-block-robots" in build.plugins,
            "summary": summary,
            "share_tags": share_tags(build.title, page_url, summary, card_url),
            "download_url": gallery.url.rstrip("/") + build.download_path,
            "pinned_url": gallery.pinned_url(build.id),
            "oembed_url": embed.oembed_url(page_url),
            "snippet": embed.embed_snippet(target, title=build.title, height=embed.DEFAULT_HEIGHT, fit_content=False),
            "embed_url": target.embed_url,
            "sandbox": embed.SANDBOX,
            "default_height": embed.DEFAULT_HEIGHT,
            "min_height": embed.MIN_HEIGHT,
            "max_height": embed.MAX_HEIGHT,
        },
    )


def _report_rate(group: str, request: HttpRequest) -> str:
    """Rate for django-ratelimit, read per request so a changed setting applies at once."""
    return settings.REPORT_RATE_LIMIT


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=_report_rate, method="POST", block=False)
def gallery_report(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """The report form of a public gallery (404 for any other): reason, details, optional email.

    GET ``?url=<gallery page>`` (from the footer's Report link, via ``/_report`` on the
    gallery origin) names the page reported. POST (CSRF-checked by the middleware) records
    the report with ``reports.record_report`` and redirects to the thank-you page;
    invalid input gets the form again with its errors (400); more than
    ``REPORT_RATE_LIMIT`` reports from one address get it again with the reader's input
    kept and the limit explained (429).
    """
    gallery = _public_gallery(gallery_id)
    if request.method != "POST":
        form = ReportForm(initial={"url": request.GET.get("url", "")}, gallery=gallery)
        return _report_page(request, gallery, form)
    form = ReportForm(request.POST, gallery=gallery)
    if getattr(request, "limited", False):
        form.add_error(
            None,
            f"Too many reports from your address: the limit is {describe_rate(settings.REPORT_RATE_LIMIT)}. "
            "Your report was not sent; try again later. What you wrote is still below.",
        )
        return _report_page(request, gallery, form, status=429)
    if not form.is_valid():
        return _report_page(request, gallery, form, status=400)
    data = form.cleaned_data
    reports.record_report(
        gallery,
        reason=data["reason"],
        details=data["details"].strip(),
        email=data["email"],
        reporter_key=reports.reporter_key_for(client_ip(request)),
        page_url=data["url"],
        by=request.user,
    )
    return redirect("gallery:report-thanks", gallery.id)


def _report_page(request: HttpRequest, gallery: Gallery, form: ReportForm, status: int = 200) -> HttpResponse:
    context = {"gallery": gallery, "form": form, "page_url": form.reported_page()}
    return render(request, "gallery/report.html", context, status=status)


@require_GET
def gallery_report_thanks(request: HttpRequest, gallery_id: str) -> HttpResponse:
    """The thank-you page after a report. Not limited to public galleries: a report may just have taken this one down."""
    if not Gallery.objects.filter(pk=gallery_id).exists():
        raise Http404("No gallery has this address.")
    return render(request, "gallery/report_thanks.html", {"gallery_id": gallery_id})


def _embed_target_from_panel(gallery: Gallery, params: QueryDict) -> embed.EmbedTarget:
    """The view chosen in the embed panel; raises ``ValueError`` with a message for the reader.

    ``show``: ``app`` | ``table`` (with ``table``) | ``query`` (with ``query`` and ``p.<name>``
    parameters) | ``url`` (with ``url``, any address of this gallery); ``chrome=1`` keeps
    Datasette's header and footer; ``version=this`` pins the live build.
    """
    show = params.get("show", "app")
    chrome = params.get("chrome") == "1"
    pinned = gallery.live_build_id if params.get("version") == "this" else None
    if show == "app":
        view = "/"
    elif show == "table":
        names = {str(table.get("name")) for table in gallery.live_build.tables}
        table = params.get("table", "")
        if table not in names:
            raise ValueError(f"This gallery has no table {table!r}: choose one from the list.")
        view = embed.table_view(gallery.database_name, table)
    elif show == "query":
        queries = {query["name"]: query for query in _canned_queries(gallery)}
        name = params.get("query", "")
        if name not in queries:
            raise ValueError(f"This gallery has no canned query {name!r}: choose one from the list.")
        values = {param: params.get(f"p.{param}", "") for param in queries[name]["params"]}
        view = embed.query_view(gallery.database_name, name, values)
    elif show == "url":
        pasted = embed.parse_gallery_url(params.get("url", ""))
        if pasted.gallery_id != gallery.id:
            raise ValueError("That address belongs to another gallery: paste an address of this gallery.")
        if pasted.build_id and approved_build(gallery.pk, pasted.build_id) is None:
            raise ValueError("That pinned version of this gallery does not exist (any more).")
        # A pasted pinned address keeps its build; its chrome switch counts too.
        view, pinned, chrome = pasted.view, pasted.build_id or pinned, chrome or pasted.chrome
    else:
        raise ValueError("Choose what to show: the whole app, a table, a canned query, or a pasted address.")
    return embed.EmbedTarget(gallery_id=gallery.id, view=view, build_id=pinned, chrome=chrome)


@require_GET
def embed_code(request: HttpRequest, gallery_id: str) -> JsonResponse:
    """The embed panel's snippet as JSON, made by ``embed.embed_snippet``.

    Query: see ``_embed_target_from_panel``, plus ``fit=1`` (fit content) and ``height``
    (px, ``MIN_HEIGHT``..``MAX_HEIGHT``). Answers ``{"snippet": str, "embed_url": str,
    "view_url": str, "height": int, "fit": bool}``, or 400 ``{"error": str}``; 404 unless public.
    """
    gallery = _public_gallery(gallery_id)
    try:
        target = _embed_target_from_panel(gallery, request.GET)
        height = embed.clean_height(request.GET.get("height"))
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    fit = request.GET.get("fit") == "1"
    return JsonResponse(
        {
            "snippet": embed.embed_snippet(target, title=gallery.live_build.title, height=height, fit_content=fit),
            "embed_url": target.embed_url,
            "view_url": target.view_url,
            "height": height,
            "fit": fit,
        },
        encoder=MarkupSafeJSONEncoder,
    )


#: ``str.translate`` table of ``MarkupSafeJSONEncoder``.
_MARKUP_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


class MarkupSafeJSONEncoder(DjangoJSONEncoder):
    """JSON whose strings carry ``<``, ``>`` and ``&`` as ``\\u`` escapes: the same values for
    every JSON parser, but a publisher's title written as markup stays inert even where a
    consumer pastes the raw answer into a page."""

    def encode(self, o: Any) -> str:
        return super().encode(o).translate(_MARKUP_ESCAPES)


def _positive_int(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive whole number of pixels, not {value!r}.")
    return int(value)


def _oembed_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_GET
def oembed(request: HttpRequest) -> JsonResponse:
    """oEmbed 1.0 for any gallery URL: ``/oembed?url=...&maxwidth=...&maxheight=...&format=json``.

    200 with ``embed.oembed_response``; 400 for a missing or unparseable ``url`` or bad
    maxima; 404 for galleries that are unknown, pending, rejected or taken down, and for
    unknown builds; 501 for any format but JSON. Errors are ``{"error": str}``.
    """
    response_format = request.GET.get("format", "json").strip().lower() or "json"
    if response_format != "json":
        return _oembed_error(501, f"Only format=json is implemented, not {response_format!r}.")
    url = request.GET.get("url", "").strip()
    if not url:
        return _oembed_error(400, "The url parameter is required: /oembed?url=<address of a gallery view>&format=json")
    try:
        target = embed.parse_gallery_url(url)
        maxwidth = _positive_int(request, "maxwidth")
        maxheight = _positive_int(request, "maxheight")
    except ValueError as exc:
        return _oembed_error(400, str(exc))
    gallery = public_galleries().filter(pk=target.gallery_id).first()
    if gallery is None:
        return _oembed_error(404, "No public gallery has this address: it may be unpublished or taken down.")
    build = gallery.live_build
    if target.build_id:
        build = approved_build(gallery.pk, target.build_id)
        if build is None:
            return _oembed_error(404, "This gallery has no such version (build).")
    thumbnail = target.origin + build.card_path if build.has_card else None
    data = embed.oembed_response(
        target, title=build.title, maxwidth=maxwidth, maxheight=maxheight, thumbnail_url=thumbnail
    )
    response = JsonResponse(data, encoder=MarkupSafeJSONEncoder)
    response["Cache-Control"] = f"public, max-age={data['cache_age']}"
    return response


#: How long browsers may keep ``/embed.js`` (s): short, so fixes reach articles quickly.
EMBED_JS_MAX_AGE = 300


@require_GET
def embed_js(request: HttpRequest) -> HttpResponse:
    """``/embed.js``: sizes ``iframe[data-glasshouse-embed]`` from gallery origins' height messages."""
    response = render(
        request,
        "gallery/embed.js",
        {
            "origin_pattern_json": json.dumps(embed.gallery_origin_pattern()),
            "resize_message": embed.RESIZE_MESSAGE,
            "measure_message": embed.MEASURE_MESSAGE,
            "max_height": embed.MAX_CONTENT_HEIGHT,
        },
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = f"public, max-age={EMBED_JS_MAX_AGE}"
    return response


@require_GET
def plugins(request: HttpRequest) -> HttpResponse:
    """The plugin catalog: what each plugin does, its pinned version per Datasette version, what it needs."""
    rows = []
    for plugin in load_catalog().values():
        versions = []
        for datasette_version in DATASETTE_VERSIONS:
            pinned = (
                load_lock(datasette_version)["packages"].get(plugin.name)
                if plugin.offered_with(datasette_version)
                else None
            )
            versions.append(
                {
                    "datasette": datasette_version,
                    "pinned": pinned["version"] if pinned else "",
                    "why_not": ""
                    if pinned
                    else dict(plugin.not_offered).get(datasette_version, "not verified with this version"),
                }
            )
        rows.append({"plugin": plugin, "versions": versions})
    return render(
        request,
        "gallery/plugins.html",
        {"rows": rows, "datasette_versions": DATASETTE_VERSIONS, "default_version": DEFAULT_DATASETTE_VERSION},
    )


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
        if getattr(request, "limited", False):
            return _refuse(request, "__all__", too_many_uploads_message(), 429)
        # Refuse an oversized body before Django spools it to disk.
        refusal = upload_limits.refusal_before_reading(request)
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
        publisher.remember_new_upload(request, build)  # the build page makes and shows the link, once
    if _wants_json(request):
        return JsonResponse({"redirect": build.get_absolute_url()})
    return redirect(build)


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
    "moderation_state": str, "finished": bool, "queue_note": str, "warnings": [str]}``;
    ``log`` is ``None`` unless ``with_log`` (``publisher.may_see_build_log``: a crashed build's
    log holds a traceback, and anyone may know a build id); ``queue_note`` is empty unless the
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
    }


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
    log for who may see it (``publisher.may_see_build_log``; others get a line saying so).

    Right after an anonymous upload it shows the gallery's private management link, once:
    the link is made for this response (``publisher.new_link_to_show``).
    """
    build = get_object_or_404(Build.objects.select_related("gallery"), pk=build_id)
    management_link = publisher.new_link_to_show(request, build)  # first: it grants this session
    return render(
        request,
        "gallery/build.html",
        {
            "management_link": management_link,
            "build": build,
            "gallery": build.gallery,
            "steps": _steps(build),
            "status": build_status_data(build, with_log=publisher.may_see_build_log(request, build.gallery)),
            "progress_states": list(PROGRESS_STATES),
        },
    )


@never_cache
@require_GET
def build_status(request: HttpRequest, build_id: str) -> JsonResponse:
    """``build_status_data`` as JSON, polled by the build page every second until ``finished``.

    ``log`` is ``null`` unless the request may see it (``publisher.may_see_build_log``).
    """
    build = get_object_or_404(Build.objects.select_related("gallery"), pk=build_id)
    return JsonResponse(build_status_data(build, with_log=publisher.may_see_build_log(request, build.gallery)))


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Health of this web process's services, for load balancers and monitors.

    200 ``{"status": "ok", "checks": {"database": {"ok": true, "ms": 2}, "broker": ..., "storage": ...}}``
    when every check passes; 503 with ``"status": "fail"`` and the failing checks' ``"error"``
    (an exception class name) when one does not. Each check is bounded by ``HEALTH_CHECK_TIMEOUT``
    seconds (``gallery.health``). Exempt from the HTTPS redirect, so a probe may speak plain HTTP.
    """
    checks = health.check_all()
    healthy = all(result["ok"] for result in checks.values())
    return JsonResponse({"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503)
