"""Embedding a gallery elsewhere: the embed panel's snippet, oEmbed, and ``/embed.js``."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from gallery import embed
from gallery.models import Build, Gallery, approved_build
from gallery.views.public import canned_queries, live_build_of, public_galleries, public_gallery


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
        names = {str(table.get("name")) for table in live_build_of(gallery).tables}
        table = params.get("table", "")
        if table not in names:
            raise ValueError(f"This gallery has no table {table!r}: choose one from the list.")
        view = embed.table_view(gallery.database_name, table)
    elif show == "query":
        queries = {query["name"]: query for query in canned_queries(gallery)}
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
    gallery = public_gallery(gallery_id)
    try:
        target = _embed_target_from_panel(gallery, request.GET)
        height = embed.clean_height(request.GET.get("height"))
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    fit = request.GET.get("fit") == "1"
    return JsonResponse(
        {
            "snippet": embed.embed_snippet(target, title=live_build_of(gallery).title, height=height, fit_content=fit),
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
    build: Build | None = live_build_of(gallery)
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
