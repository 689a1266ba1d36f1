"""Public pages of the app origin: the front page (cards, search), each gallery's page, the plugin catalog, health."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from builder.catalog import DATASETTE_VERSIONS, DEFAULT_DATASETTE_VERSION, load_catalog, load_left_out, load_lock
from gallery import embed, health
from gallery.models import Build, Gallery, asks_not_to_be_indexed

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


def public_gallery(gallery_id: str) -> Gallery:
    """The public gallery ``gallery_id``; raises ``Http404`` if unknown, not approved or not built."""
    gallery = public_galleries().filter(pk=gallery_id).first()
    if gallery is None:
        raise Http404("No public gallery has this address.")
    return gallery


def live_build_of(gallery: Gallery) -> Build:
    """The live build of a public gallery (``GalleryQuerySet.public`` guarantees one); ``Http404`` if it has none."""
    if gallery.live_build is None:
        raise Http404("No public gallery has this address.")
    return gallery.live_build


def canned_queries(gallery: Gallery) -> list[dict[str, Any]]:
    """The canned queries of the public gallery's live build's metadata: ``[{"name", "title", "params": [str]}]``."""
    metadata = live_build_of(gallery).metadata
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
    gallery = public_gallery(gallery_id)
    build = live_build_of(gallery)
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
            "queries": canned_queries(gallery),
            "page_url": page_url,
            "card_url": card_url,
            # Crawlers run no Service Worker, so the page itself asks them not to index what is hidden.
            "noindex": asks_not_to_be_indexed(gallery.visibility, build.plugins),
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


@require_GET
def plugins(request: HttpRequest) -> HttpResponse:
    """The plugin catalog: what each plugin does, its pinned version per Datasette version, what it needs;
    then the plugins left out, each with the reason (``builder/catalog/left_out.toml``)."""
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
        {
            "rows": rows,
            "left_out": load_left_out().items(),
            "datasette_versions": DATASETTE_VERSIONS,
            "default_version": DEFAULT_DATASETTE_VERSION,
        },
    )


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
