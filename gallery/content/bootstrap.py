"""The bootstrap page (with oEmbed discovery) and the footer's Report link."""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.http import parse_etags

from builder.storage import MissingKey, StorageError, content_type_for
from gallery import view_counts
from gallery.content.files import etag, serve_key
from gallery.content.pages import not_found, notice_page, storage_unavailable, with_headers
from gallery.content.paths import NO_CACHE, OEMBED_TYPE, PRIVATE_NO_STORE
from gallery.content.resolve import ServedBuild
from gallery.embed import oembed_url
from gallery.origins import content_origin
from gallery.storage import get_storage

logger = logging.getLogger(__name__)


def serve_bootstrap(request: HttpRequest, served: ServedBuild) -> HttpResponseBase:
    """The build's ``index.html`` with an oEmbed discovery ``<link>`` for the requested URL, plus the same as ``Link``.

    The page is small (a few KiB), so it is read whole and changed here; its ETag
    covers the requested URL, since the inserted link differs per URL. A preview's
    page is served as stored, never to be stored (previews are not for sharing).

    A GET on the gallery's public origin (not a pinned version, not a preview) counts one
    view in ``Gallery.view_count``. Once a reader's Service Worker runs, it answers the
    gallery's pages itself, so the count is of loads that reach the server.
    """
    if request.method == "GET" and served.label == served.gallery_id and not served.preview:
        view_counts.count_view(served.gallery_id)
    key = f"builds/{served.build_id}/index.html"
    if served.preview:
        return serve_key(request, key, PRIVATE_NO_STORE, build_id=served.build_id)
    page_url = content_origin(served.label) + request.get_full_path()
    discovery = oembed_url(page_url)
    headers = {
        "Cache-Control": NO_CACHE,
        "ETag": etag(f"{key}\n{page_url}"),
        "Link": oembed_link_header(discovery, served.title),
    }
    if headers["ETag"] in parse_etags(request.headers.get("If-None-Match", "")):
        return with_headers(HttpResponse(status=304), headers)
    try:
        with get_storage().open(key) as fh:
            page = fh.read()
    except MissingKey:
        return not_found()
    except StorageError as exc:
        return storage_unavailable(key, exc)
    body = insert_discovery_link(page, discovery, served.title)
    response = HttpResponse(
        b"" if request.method == "HEAD" else body, content_type=content_type_for(key)
    )
    response["Content-Length"] = str(len(body))
    return with_headers(response, headers)


_HEAD_TAG_RE = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)


def insert_discovery_link(page: bytes, oembed: str, title: str) -> bytes:
    """Return ``page`` (UTF-8 HTML) with ``<link rel="alternate" type="application/json+oembed" …>`` after ``<head>``.

    ``oembed`` is the oEmbed endpoint URL, ``title`` the gallery's title; both are
    HTML-escaped. A page without a ``<head>`` element is returned unchanged (and
    logged): the ``Link`` header still carries the discovery.
    """
    match = _HEAD_TAG_RE.search(page)
    if match is None:
        logger.warning("bootstrap page has no <head>: oEmbed discovery only in the Link header")
        return page
    tag = (
        f'<link rel="alternate" type="{OEMBED_TYPE}" '
        f'href="{html.escape(oembed, quote=True)}" title="{html.escape(title, quote=True)}">'
    ).encode()
    return page[: match.end()] + tag + page[match.end() :]


def oembed_link_header(oembed: str, title: str) -> str:
    """The HTTP ``Link`` value for oEmbed discovery (RFC 8288; the title as RFC 8187 ``title*``, so any text fits)."""
    return f"<{oembed}>; rel=\"alternate\"; type=\"{OEMBED_TYPE}\"; title*=UTF-8''{quote(title, safe='')}"


def report_form_url(gallery_id: str, page_url: str = "") -> str:
    """The app's report form for ``gallery_id``: ``<APP_URL>/g/<id>/report/[?url=<page_url>]``."""
    form = settings.APP_URL + reverse("gallery:report", args=[gallery_id])
    return form + (f"?{urlencode({'url': page_url})}" if page_url else "")


def report_redirect(request: HttpRequest, served: ServedBuild) -> HttpResponseBase:
    """Send ``/_report?url=<path and query of a page>`` to the app's report form for this gallery.

    The page becomes an absolute URL on this origin (pinned origins keep their build);
    a ``url`` that is not a path (``/...``) is dropped, so the form just names the gallery.
    A preview is no published gallery, and its signed address must not end up in a
    report: 404 there.
    """
    if served.preview:
        return notice_page(404, "Not published", "This is a preview: only published galleries can be reported.")
    page = request.GET.get("url", "")
    page_url = content_origin(served.label) + page if page.startswith("/") else ""
    response = HttpResponseRedirect(report_form_url(served.gallery_id, page_url))
    response["Cache-Control"] = NO_CACHE
    return response
