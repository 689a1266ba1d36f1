"""The content origin: serve each gallery's bundle at ``<gallery-id>.<CONTENT_DOMAIN>``.

``ContentOriginMiddleware`` sits first in ``MIDDLEWARE``. A request whose host
(port stripped) is a subdomain of ``CONTENT_DOMAIN`` is answered here and never
reaches the app's URLs, sessions, CSRF or X-Frame-Options; so is one for the bare
``CONTENT_DOMAIN`` (404, a page saying where the app is: ``APP_URL``); every other
host passes through to the app. In production nginx serves the same map from S3.

A host label is ``<gallery-id>`` (follows ``Gallery.live_build``) or
``<gallery-id>--<build-id>`` (a pinned version: always that build, which must be a
``ready`` build of the gallery). Map, where ``<build>`` is the build the label
serves (storage keys as in DESIGN.md, "Bundle"; with ``CONTENT_ACCEL_REDIRECT`` set, nginx sends
the bytes of each key, ``_serve_key``):

=================================  ==========================================  ============
request path                       storage key                                 Cache-Control
=================================  ==========================================  ============
``/sw.js``                         ``builds/<build>/sw.js``                    no-cache
``/_runtime/<rest>``               ``runtime/<rest>``                          immutable
``/_wheels/<sha256>/<file>``       ``wheels/<sha256>/<file>``                  immutable
``/_build/<build>/<rest>``         ``builds/<build>/<rest>``                   immutable
``/-/static/<rest>``               ``builds/<build>/-/static/<rest>``          no-cache
``/-/static-plugins/<rest>``       ``builds/<build>/-/static-plugins/<rest>``  no-cache
``/_download/<id>.zip``            ``builds/<id>/download.zip``                no-store
``/_report?url=<page path>``       302 to the app's report form                no-cache
anything else (app deep links)     ``builds/<build>/index.html`` (+ oEmbed)    no-cache
=================================  ==========================================  ============

The bootstrap page gets an oEmbed discovery ``<link>`` for the requested URL
after its ``<head>`` tag, and the same as a ``Link`` header. ``/_download/`` serves
the origin's own build on a pinned origin and any ready build of the gallery on
its live origin: the self-host zip the build stored (``builder.download``), as an
attachment, at most ``DOWNLOAD_RATE_LIMIT`` per client address (else 429); the zip is
never served under ``/_build/``. ``/_report`` is where the "Report" link in
every page's footer points (the bundle's built-in plugin,
``builder/runtime/glasshouse_report.py``): the bundle cannot name the app origin, so
this origin sends the reader to ``<APP_URL>/g/<gallery-id>/report/?url=<the page's
absolute URL on this origin>``.

A preview label ``pv-<build-id>-<expiry>-<signature>`` (``gallery.preview``) serves
its build as a pinned origin does, whatever its review, so a publisher and the
moderators can see a version waiting for review; a forged, malformed or expired
preview label answers 403 to every path (an expired one's ``/sw.js`` is the kill
switch). A preview answers 404 when its build is unknown or not ready, and 410 when
the gallery was taken down or deleted, or the build was rejected or its files removed
(``Build.review``, ``Build.files_deleted``). Every preview answer carries ``X-Robots-Tag: noindex``,
``Referrer-Policy: no-referrer`` (the origin is the secret), ``Content-Security-Policy:
frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (a preview is not for embedding)
and a ``private`` ``Cache-Control`` (the bootstrap page and ``/sw.js``: ``private,
no-store``); its bootstrap page has no oEmbed discovery.

Only an approved build (``Build.review``, ``gallery.models.approved_build``) is served on
a gallery's origin and its pinned origins. Unknown gallery, a pinned build that is unknown,
not ready or not approved, a ``/_build/`` of another build: 404. Gallery not approved, held
for review, or no live build: 404. Taken down or deleted (a tombstone): 410 on the
live origin and on every pinned origin. Wherever nothing is published (each of those
404s and 410s, and an expired preview), ``/sw.js`` is the kill-switch worker, so a reader's installed
worker empties its caches and unregisters. Only GET and HEAD (else 405). Content types come from
``builder.storage.content_type_for(key)``, never from the request. A GET without ``Range``
whose ``Accept-Encoding`` allows gzip gets the stored ``<key>.gz`` where the served build's
manifest lists one (``Content-Encoding: gzip``, the key's own type, an ETag of its own);
answers for compressible keys carry ``Vary: Accept-Encoding``. Every answer
carries ``builder.csp.security_headers`` and no cookies: ``X-Content-Type-Options:
nosniff``; the served build's ``Content-Security-Policy`` as its manifest records it
(``content_security_policy``; ``default-src 'self'`` plus what its plugins need and
``frame-ancestors *``: any site may embed a gallery, previews excepted), or the policy
of a gallery without plugins where no build is served; ``Referrer-Policy:
no-referrer`` for an unlisted gallery, read from its row on every request (so a
visibility change takes effect at once), and wherever no build is served, else
``strict-origin-when-cross-origin``. Over HTTPS every answer also carries the app origin's
``Strict-Transport-Security`` max-age (``strict_transport_security``).
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import BinaryIO
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.request import split_domain_port
from django.urls import reverse
from django.utils.http import parse_etags
from django_ratelimit.core import get_usage

from builder.csp import gallery_policy, security_headers
from builder.download import DOWNLOAD_NAME, download_filename, download_key
from builder.manifest import Manifest
from builder.storage import MissingKey, StorageError, check_key, compressible, content_type_for
from gallery import queue, view_counts
from gallery.embed import oembed_url
from gallery.models import (
    BUILD_ID_RE,
    Build,
    BuildReview,
    BuildState,
    Gallery,
    approved_build,
    content_origin,
    parse_content_label,
)
from gallery.preview import PreviewDenied, is_preview_label, parse_preview_label
from gallery.ratelimits import DOWNLOAD_RATE_GROUP, too_many_downloads_message
from gallery.storage import get_storage

logger = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
#: The bootstrap page and /sw.js of a preview: never stored, so an expired link serves nothing.
PRIVATE_NO_STORE = "private, no-store"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: Datasette's and the plugins' static files (builder/runtime/js/routes.mjs, STATIC_PREFIXES).
STATIC_PREFIXES = ("/-/static/", "/-/static-plugins/")
#: Path prefix of the self-host download: ``/_download/<build-id>.zip``.
DOWNLOAD_PREFIX = "/_download/"
#: Where the footer's "Report" link points (builder/runtime/js/routes.mjs, SERVER_PATHS).
REPORT_PATH = "/_report"
#: Media type of oEmbed discovery links (oEmbed 1.0, section 4).
OEMBED_TYPE = "application/json+oembed"
_CHUNK = 64 * 1024


def killswitch_source() -> bytes:
    """Return the kill-switch Service Worker (``builder/runtime/killswitch.js``). Raises ``OSError`` if absent."""
    return resources.files("builder").joinpath("runtime", "killswitch.js").read_bytes()


def content_origin_label(request: HttpRequest) -> str | None:
    """Return the label before ``.<CONTENT_DOMAIN>`` in the request's host, or ``None`` for any other host.

    ``"abc123def456.localhost:8000"`` -> ``"abc123def456"``; ``"127.0.0.1:8000"`` and the
    bare ``"localhost:8000"`` -> ``None``. A host Django refuses (``ALLOWED_HOSTS``) is left to
    the app, which answers 400.
    """
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    domain, _port = split_domain_port(host)
    suffix = "." + settings.CONTENT_DOMAIN
    if not domain.endswith(suffix) or len(domain) == len(suffix):
        return None
    return domain[: -len(suffix)]


def is_bare_content_domain(request: HttpRequest) -> bool:
    """Whether the request's host is ``CONTENT_DOMAIN`` itself, with no gallery label (``"localhost:8000"``)."""
    try:
        host = request.get_host()
    except DisallowedHost:
        return False
    return split_domain_port(host)[0] == settings.CONTENT_DOMAIN


class ContentOriginMiddleware:
    """Answer requests for gallery content origins and the bare content domain; pass app-origin requests on.

    Every answer it gives gets ``Strict-Transport-Security`` when the request came over HTTPS
    (``strict_transport_security``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        label = content_origin_label(request)
        if label is None:
            if not is_bare_content_domain(request):
                return self.get_response(request)
            # The content domain is galleries' only: the app never answers on it (an app page
            # there would share the site of every gallery).
            response = _harden(_bare_content_domain(), None)
        else:
            response = serve_content(request, label)
            _clear_cookies(request, response)
            if is_preview_label(label):
                response = _harden_preview(response)
        strict_transport_security(request, response)
        return response


@dataclass(frozen=True)
class ServedBuild:
    """The build a content-origin request is answered from.

    ``label`` is the host's first label; ``build_id`` is the live build on a gallery's
    own origin, or the pinned build on ``<gallery-id>--<build-id>`` and on a preview
    origin; ``hidden`` asks crawlers not to index it; ``preview``: a signed preview
    origin (``gallery.preview``), whose bootstrap page and worker are never stored and
    carry no oEmbed discovery; ``unlisted``: the gallery's visibility now, which makes
    every answer ``Referrer-Policy: no-referrer``.
    """

    label: str
    gallery_id: str
    title: str
    build_id: str
    pinned: bool
    hidden: bool
    preview: bool = False
    unlisted: bool = False


@dataclass(frozen=True)
class Unserved:
    """Why a content-origin label serves no build: ``response`` (404, 403, 410 or 503) answers
    every path, and with ``killswitch`` its ``/sw.js`` is the kill-switch worker instead."""

    response: HttpResponse
    killswitch: bool


def serve_content(request: HttpRequest, label: str) -> HttpResponse:
    """Answer ``request`` for the content origin ``label`` (see the module's map).

    ``label`` is ``<gallery-id>`` (follows the live build), ``<gallery-id>--<build-id>``
    (a pinned version) or a preview label (``gallery.preview``). Moderation is checked
    before anything else, for every build: only an approved build is served on a public
    origin; a preview's signature and expiry stand in for approval.
    """
    if request.method not in ("GET", "HEAD"):
        response = _page(
            405,
            "Method not allowed",
            "Galleries are read-only: only GET and HEAD are allowed.",
        )
        response["Allow"] = "GET, HEAD"
        return _harden(response, None)
    served = _resolve_preview(label) if is_preview_label(label) else _resolve(request, label)
    if isinstance(served, Unserved):
        # Nothing is published here (pending, rejected, taken down, deleted, unknown build, an
        # ended preview): a Service Worker a reader installed earlier is replaced by the kill
        # switch, which empties its caches and unregisters it. Not on 503: a storage fault is no
        # removal. Not for a forged or malformed preview label either: the kill switch is a 200,
        # and such a label must serve nothing at all (no worker can have been installed there).
        if request.path_info == "/sw.js" and served.killswitch:
            return _harden(_killswitch(request), None)
        return _harden(served.response, None)
    return _harden(_route(request, served), served)


def _gone(response: HttpResponse) -> Unserved:
    """``response`` for every path, and the kill switch for ``/sw.js``."""
    return Unserved(response, killswitch=True)


def _resolve(request: HttpRequest, label: str) -> ServedBuild | Unserved:
    """Find the build ``label`` serves, or why there is none (404, or 410 after a takedown)."""
    parsed = parse_content_label(label)
    if parsed is None:
        return _gone(_no_gallery())
    gallery_id, pinned_id = parsed
    row = (
        Gallery.objects.filter(pk=gallery_id)
        .values_list("moderation_state", "live_build_id", "visibility", "held_at")
        .first()
    )
    if row is None:
        return _gone(_no_gallery())
    moderation_state, live, visibility, held_at = row
    # A takedown or deletion covers the live origin and every pinned one, whatever build the label names.
    if moderation_state == Gallery.ModerationState.TAKEN_DOWN:
        return _gone(_page(410, "Gone", "This gallery was taken down."))
    if moderation_state == Gallery.ModerationState.DELETED:
        return _gone(_page(410, "Gone", "This gallery was deleted by its publisher."))
    if held_at is not None:
        return _gone(
            _page(404, "Held for review", "Readers reported this gallery; it is hidden while a moderator reviews it.")
        )
    if moderation_state != Gallery.ModerationState.APPROVED or live is None:
        return _gone(_page(404, "Not published", "This gallery is not published (yet)."))
    # Only an approved build is ever served: a pinned origin of a build nobody approved (a new
    # version waiting for review, an old upload a moderator never saw) is as unknown here as a
    # build that never existed.
    build = approved_build(gallery_id, pinned_id or live)
    if build is None:
        return _gone(
            _page(
                404,
                "No such version",
                "This gallery has no published version at this address. "
                "Open the gallery's own address for its latest version.",
            )
        )
    return ServedBuild(
        label=label,
        gallery_id=gallery_id,
        title=build.title,
        build_id=build.pk,
        pinned=pinned_id is not None,
        # Crawlers run no Service Worker, so the server answers for them: unlisted galleries,
        # those with datasette-block-robots, and pinned copies (the live origin is the one to
        # index) ask not to be indexed.
        hidden=visibility == Gallery.Visibility.UNLISTED
        or "datasette-block-robots" in build.plugins
        or pinned_id is not None,
        unlisted=visibility == Gallery.Visibility.UNLISTED,
    )


def _resolve_preview(label: str) -> ServedBuild | Unserved:
    """The build a preview label serves (any moderation state), or why not: 403 (a bad label;
    an expired one also gets the kill switch), 404 or 410.

    A preview ends (410, kill switch) when the gallery is taken down or deleted, or the build
    was rejected (its gallery rejected while it existed) or its files removed; a corrected
    version uploaded after a rejection is pending, and previewable.
    """
    try:
        grant = parse_preview_label(label)
    except PreviewDenied as denied:
        # The build id only: the rest of a label may be a capability.
        logger.info("preview refused (%s): %s…", denied.reason, label[:19])
        # An expired link was valid once, so a reader may have its worker installed: end it.
        expired = denied.reason == PreviewDenied.Reason.EXPIRED
        return Unserved(_page(403, "Preview link not valid", str(denied)), killswitch=expired)
    row = (
        Build.objects.filter(pk=grant.build_id)
        .values_list("gallery_id", "state", "files_deleted", "review", "gallery__moderation_state", "bundle_settings")
        .first()
    )
    if row is None:
        return _gone(_page(404, "No such version", "This preview's version no longer exists."))
    gallery_id, state, files_deleted, review, moderation_state, bundle_settings = row
    # A takedown or deletion covers every origin of the gallery, previews too, even while its
    # files are still being removed (after commit) or could not be; so does a rejection for the
    # builds it rejected.
    if moderation_state == Gallery.ModerationState.TAKEN_DOWN:
        return _gone(_page(410, "Gone", "This gallery was taken down."))
    if moderation_state == Gallery.ModerationState.DELETED:
        return _gone(_page(410, "Gone", "This gallery was deleted by its publisher."))
    if review == BuildReview.REJECTED or files_deleted:
        return _gone(
            _page(
                410,
                "Gone",
                "A moderator rejected this version, or its files were removed. "
                "Upload a corrected version and preview that one.",
            )
        )
    if state != BuildState.READY:
        return _gone(
            _page(
                404,
                "Not ready",
                "This version has not finished building: open its build page, and the preview once it is ready.",
            )
        )
    return ServedBuild(
        label=grant.label,
        gallery_id=gallery_id,
        title=str((bundle_settings or {}).get("title", "")),
        build_id=grant.build_id,
        pinned=True,
        hidden=True,
        preview=True,
        unlisted=True,
    )


def _route(request: HttpRequest, served: ServedBuild) -> HttpResponse:
    """Map ``request``'s path to a file of ``served.build`` (see the module's map)."""
    path = request.path_info
    build = served.build_id
    if path == "/robots.txt":
        rules = "Disallow: /" if served.hidden else "Allow: /"
        response = HttpResponse(f"User-agent: *\n{rules}\n", content_type="text/plain; charset=utf-8")
        return _with_headers(response, {"Cache-Control": NO_CACHE})
    if path == "/sw.js":
        return _serve_key(
            request,
            f"builds/{build}/sw.js",
            PRIVATE_NO_STORE if served.preview else NO_CACHE,
            {"Service-Worker-Allowed": "/"},
            build_id=build,
        )
    if path.startswith("/_runtime/"):
        # Shared by every build: the served build's manifest says whether a gzip copy is stored.
        return _serve_key(request, "runtime/" + path.removeprefix("/_runtime/"), IMMUTABLE, build_id=build)
    if path.startswith("/_wheels/"):
        sha256, _, filename = path.removeprefix("/_wheels/").partition("/")
        if not SHA256_RE.fullmatch(sha256) or not filename or "/" in filename:
            return _not_found()
        return _serve_key(request, f"wheels/{sha256}/{filename}", IMMUTABLE, build_id=build)
    if path.startswith("/_build/"):
        build_id, _, rest = path.removeprefix("/_build/").partition("/")
        # The stored zip only ever goes out through /_download/ (rate-limited, as an attachment).
        if build_id != build or not rest or rest == DOWNLOAD_NAME:
            return _not_found()
        return _serve_key(request, f"builds/{build}/{rest}", IMMUTABLE, build_id=build)
    if path.startswith(STATIC_PREFIXES):
        # Datasette's static files, written into the bundle at their URL paths; the URL is not
        # versioned, so a new live build must be revalidated (the ETag names the build's key).
        return _serve_key(request, f"builds/{build}{path}", NO_CACHE, build_id=build)
    if path.startswith(DOWNLOAD_PREFIX):
        return _serve_download(request, served, path.removeprefix(DOWNLOAD_PREFIX))
    if path == REPORT_PATH:
        return _report_redirect(request, served)
    # Every other path is a page of the Datasette app: the bootstrap page boots
    # the Service Worker, which then answers the same URL inside the browser.
    response = _serve_bootstrap(request, served)
    if served.hidden:
        response["X-Robots-Tag"] = "noindex"
    return response


# --- oEmbed discovery on the bootstrap page -------------------------------------------------


def _serve_bootstrap(request: HttpRequest, served: ServedBuild) -> HttpResponse:
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
        return _serve_key(request, key, PRIVATE_NO_STORE, build_id=served.build_id)
    page_url = content_origin(served.label) + request.get_full_path()
    discovery = oembed_url(page_url)
    headers = {
        "Cache-Control": NO_CACHE,
        "ETag": _etag(f"{key}\n{page_url}"),
        "Link": oembed_link_header(discovery, served.title),
    }
    if headers["ETag"] in parse_etags(request.headers.get("If-None-Match", "")):
        return _with_headers(HttpResponse(status=304), headers)
    try:
        with get_storage().open(key) as fh:
            page = fh.read()
    except MissingKey:
        return _not_found()
    except StorageError as exc:
        return _storage_unavailable(key, exc)
    body = insert_discovery_link(page, discovery, served.title)
    response = HttpResponse(
        b"" if request.method == "HEAD" else body, content_type=content_type_for(key)
    )
    response["Content-Length"] = str(len(body))
    return _with_headers(response, headers)


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


# --- The footer's "Report" link ------------------------------------------------------------


def report_form_url(gallery_id: str, page_url: str = "") -> str:
    """The app's report form for ``gallery_id``: ``<APP_URL>/g/<id>/report/[?url=<page_url>]``."""
    form = settings.APP_URL + reverse("gallery:report", args=[gallery_id])
    return form + (f"?{urlencode({'url': page_url})}" if page_url else "")


def _report_redirect(request: HttpRequest, served: ServedBuild) -> HttpResponse:
    """Send ``/_report?url=<path and query of a page>`` to the app's report form for this gallery.

    The page becomes an absolute URL on this origin (pinned origins keep their build);
    a ``url`` that is not a path (``/...``) is dropped, so the form just names the gallery.
    A preview is no published gallery, and its signed address must not end up in a
    report: 404 there.
    """
    if served.preview:
        return _page(404, "Not published", "This is a preview: only published galleries can be reported.")
    page = request.GET.get("url", "")
    page_url = content_origin(served.label) + page if page.startswith("/") else ""
    response = HttpResponseRedirect(report_form_url(served.gallery_id, page_url))
    response["Cache-Control"] = NO_CACHE
    return response


# --- Self-host download ---------------------------------------------------------------------


def _serve_download(request: HttpRequest, served: ServedBuild, name: str) -> HttpResponse:
    """Serve ``/_download/<build-id>.zip``: the zip the build stored (``builder.download.download_key``).

    A pinned origin offers its own build, a gallery's origin any build ``approved_build``
    returns; anything else is 404. Each GET counts against ``DOWNLOAD_RATE_LIMIT`` for the
    client's address (``gallery.ratelimits``); over it, 429 with a page that says when to try
    again. The zip goes out as every stored file does (``_serve_key``: X-Accel-Redirect behind
    nginx), ``no-store``, as an attachment named ``<database-name>-<build-id>.zip``. A build
    made before builds stored their zip (``Build.download_bytes`` unset) gets it made once
    (``_prepare_download``): the server never makes a zip while a reader waits.
    """
    build_id = name.removesuffix(".zip")
    if (
        not name.endswith(".zip")
        or not BUILD_ID_RE.fullmatch(build_id)
        or (served.pinned and build_id != served.build_id)
    ):
        return _not_found()
    build = approved_build(served.gallery_id, build_id)
    if build is None:
        return _not_found()
    if build.download_bytes is None:
        return _prepare_download(build_id)
    usage = get_usage(
        request, group=DOWNLOAD_RATE_GROUP, key="ip", rate=settings.DOWNLOAD_RATE_LIMIT, method="GET", increment=True
    )
    if usage is not None and usage["should_limit"]:
        response = _page(429, "Too many downloads", too_many_downloads_message(usage["time_left"]))
        if usage["time_left"] >= 0:
            response["Retry-After"] = str(usage["time_left"])
        return response
    disposition = f'attachment; filename="{build_serving(build_id).download_filename}"'
    return _serve_key(
        request, download_key(build_id), "no-store", {"Content-Disposition": disposition}, build_id=build_id
    )


def _prepare_download(build_id: str) -> HttpResponse:
    """Answer 503 for a build whose zip is not stored yet, having asked a worker to make it.

    The first request sends ``worker_shell.tasks.store_download`` (``gallery.queue.send_download``);
    later ones, until the task's hard time limit has passed, send nothing more (a cache entry
    per build, shared by the web processes through Redis). The page says to try again shortly,
    and ``Retry-After`` says when.
    """
    asked = f"glasshouse:download-asked:{build_id}"
    if cache.add(asked, 1, timeout=settings.BUILD_HARD_TIME_LIMIT):
        try:
            queue.send_download(build_id)
        except queue.BROKER_ERRORS as exc:
            cache.delete(asked)
            logger.error("could not ask a worker for the zip of build %s: %s", build_id, exc)
            return _page(
                503, "Download unavailable", "This version's download cannot be prepared right now. Try again later."
            )
    response = _page(
        503,
        "Download being prepared",
        "This version was published before downloads were stored, so its zip is being made now, once. "
        "Try again in a minute or two.",
    )
    response["Retry-After"] = "60"
    return response


def _serve_key(
    request: HttpRequest,
    key: str,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
    *,
    build_id: str,
) -> HttpResponse:
    """Stream storage ``key`` with its fixed content type, or answer 304/404/503.

    A GET without ``Range`` whose ``Accept-Encoding`` allows gzip gets the stored ``<key>.gz``
    when the manifest of ``build_id`` (the build being served) lists one for ``key``:
    ``Content-Encoding: gzip``, ``key``'s content type, and an ETag of its own. Every answer
    for a compressible key (``builder.storage.compressible``) carries ``Vary: Accept-Encoding``.

    With ``CONTENT_ACCEL_REDIRECT`` set (production, behind deploy/nginx/content.conf), a GET is
    answered with no body and ``X-Accel-Redirect: <prefix><key, percent-encoded>``: nginx fetches
    the bytes from S3 (Range included) and keeps this answer's content type and headers. Storage
    is not touched then; a missing key is S3's 404, which nginx turns into its own. HEAD is still
    answered here, with the size from storage.
    """
    try:
        check_key(key)
    except ValueError:
        return _not_found()
    content_type = content_type_for(key)
    head = request.method == "HEAD"
    varies = compressible(key)
    stored = key
    if (
        varies
        and not head
        and "Range" not in request.headers
        and accepts_gzip(request.headers.get("Accept-Encoding", ""))
    ):
        stored = build_serving(build_id).gzip.get(key, key)
    headers = {
        "Cache-Control": cache_control,
        # Keys under builds/<id>/, runtime/ and wheels/ never change, so the stored key names the bytes.
        "ETag": _etag(stored),
        **({"Vary": "Accept-Encoding"} if varies else {}),
        **(extra_headers or {}),
    }
    if headers["ETag"] in parse_etags(request.headers.get("If-None-Match", "")):
        return _with_headers(HttpResponse(status=304), headers)
    if stored != key:
        headers["Content-Encoding"] = "gzip"
    key = stored
    if settings.CONTENT_ACCEL_REDIRECT and not head:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.CONTENT_ACCEL_REDIRECT + quote(key)
        return _with_headers(response, headers)
    storage = get_storage()
    try:
        local = storage.local_path(key)
        if local is not None:
            fh = _open_local(key, local)
            size = os.fstat(fh.fileno()).st_size
            if head:
                fh.close()
                response: HttpResponse = HttpResponse(content_type=content_type)
            else:
                response = FileResponse(fh, content_type=content_type)
                # FileResponse names the file; bundle files are shown inline, under the request's URL.
                del response["Content-Disposition"]
        else:
            size = storage.size(key)
            if head:
                response = HttpResponse(content_type=content_type)
            else:
                response = StreamingHttpResponse(
                    _stream(storage.open(key)), content_type=content_type
                )
    except MissingKey:
        return _not_found()
    except StorageError as exc:
        return _storage_unavailable(key, exc)
    response["Content-Length"] = str(size)
    return _with_headers(response, headers)


def _open_local(key: str, path: os.PathLike[str]) -> BinaryIO:
    try:
        # Left open on purpose: FileResponse closes it when the response is done.
        return open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise MissingKey(key) from exc
    except OSError as exc:
        raise StorageError(f"could not read {key}: {exc}") from exc


def _stream(body: BinaryIO) -> Iterator[bytes]:
    """Yield ``body`` in 64 KiB chunks, closing it at the end (or when the response is closed)."""
    try:
        while chunk := body.read(_CHUNK):
            yield chunk
    finally:
        body.close()


def _etag(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _storage_unavailable(key: str, exc: StorageError) -> HttpResponse:
    logger.error("storage failed serving %s: %s", key, exc)
    return _page(503, "Storage unavailable", "Storage is unavailable, try again shortly.")


def _killswitch(request: HttpRequest) -> HttpResponse:
    try:
        body = killswitch_source()
    except OSError as exc:
        logger.error("kill-switch worker missing: %s", exc)
        return _page(
            503, "Unavailable", "The kill-switch worker is missing on the server."
        )
    response = HttpResponse(
        b"" if request.method == "HEAD" else body,
        content_type=content_type_for("sw.js"),
    )
    response["Content-Length"] = str(len(body))
    return _with_headers(
        response, {"Cache-Control": NO_CACHE, "Service-Worker-Allowed": "/"}
    )


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response


def _harden(response: HttpResponse, served: ServedBuild | None) -> HttpResponse:
    """Set ``builder.csp.security_headers`` on a content-origin answer (see the module's docstring).

    ``served`` is the build the answer comes from, or ``None`` where none is served (the
    policy of a gallery without plugins, and ``no-referrer``). Any site may frame a
    gallery: no X-Frame-Options.
    """
    policy = build_policy(served.build_id) if served is not None else gallery_policy(())
    for name, value in security_headers(policy, unlisted=served is None or served.unlisted):
        response[name] = value
    return response


def strict_transport_security(request: HttpRequest, response: HttpResponse) -> None:
    """Add ``Strict-Transport-Security: max-age=<SECURE_HSTS_SECONDS>`` to a content-origin answer sent over HTTPS.

    The app origin's max-age (``SECURE_HSTS_SECONDS``: a year with an ``https://`` ``APP_URL``,
    ``0`` for none). ``request.is_secure()`` honours ``SECURE_PROXY_SSL_HEADER`` (nginx's
    ``X-Forwarded-Proto``); nothing over plain HTTP, where browsers ignore the header anyway.
    Behind nginx, deploy/nginx/content.conf copies it onto the store files it sends itself.
    """
    seconds = settings.SECURE_HSTS_SECONDS
    if seconds and request.is_secure():
        response["Strict-Transport-Security"] = f"max-age={seconds}"


#: Paths of the shared stores and a build's files: many requests per visit, no cookies to clear.
_NO_CLEAR_SITE_DATA_PREFIXES = ("/_runtime/", "/_wheels/", "/_build/", *STATIC_PREFIXES, DOWNLOAD_PREFIX)


def _clear_cookies(request: HttpRequest, response: HttpResponse) -> None:
    """Add ``Clear-Site-Data: "cookies"`` to the bootstrap page, ``/sw.js`` and the other few answers.

    Galleries are cookie-free, so a cookie on a content origin was set by a gallery's own
    script: perhaps one large enough that every request to the origin (or, on a content
    domain not yet on the Public Suffix List, to its siblings) is refused for its header
    size, which would keep readers from ever fetching a kill-switch ``/sw.js``. The browser
    drops such cookies whenever it loads a page or checks the worker. Leaves out the
    immutable stores and a build's files (``_NO_CLEAR_SITE_DATA_PREFIXES``), fetched by the
    dozen per visit, where clearing would only cost time. Browsers honour the header on
    secure origins only (https, and ``*.localhost`` in development).
    """
    if not request.path_info.startswith(_NO_CLEAR_SITE_DATA_PREFIXES):
        response["Clear-Site-Data"] = '"cookies"'


@dataclass(frozen=True)
class BuildServing:
    """What the content origin needs from a build's ``manifest.json``.

    ``policy``: its ``Content-Security-Policy``; ``gzip``: storage key -> key of its stored
    gzip copy, for every ``files`` entry with a ``gzip`` record (``builder.bundle``);
    ``download_filename``: what a reader's browser saves its zip as
    (``builder.download.download_filename``).
    """

    policy: str
    gzip: dict[str, str]
    download_filename: str


#: ``build_serving``'s memory: build id -> what its manifest says. A build's manifest never
#: changes, and the builds a process serves are few, so entries are never evicted.
_BUILDS: dict[str, BuildServing] = {}


def build_serving(build_id: str) -> BuildServing:
    """Read ``builds/<build_id>/manifest.json`` once per build and process (see ``BuildServing``).

    A build from before the manifest recorded its policy gets ``gallery_policy`` of its
    manifest's ``plugins``. When the manifest cannot be read or names an unknown plugin,
    the answer gets the stricter policy of a gallery without plugins, no gzip copies and
    the zip name ``data-<build_id>.zip`` (logged, not remembered): a plugin's map tiles may
    then not load, but nothing is allowed that the build did not ask for.
    """
    if build_id in _BUILDS:
        return _BUILDS[build_id]
    key = f"builds/{build_id}/manifest.json"
    try:
        with get_storage().open(key) as fh:
            manifest = Manifest.from_json(fh.read(), key)
        policy = manifest.content_security_policy or gallery_policy(manifest.plugins)
        gzipped = {entry.key: entry.gzip.key for entry in manifest.files if entry.gzip}
    except (StorageError, MissingKey, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.error("no policy for build %s (%s): serving the policy of a gallery without plugins", build_id, exc)
        return BuildServing(policy=gallery_policy(()), gzip={}, download_filename=download_filename("", build_id))
    _BUILDS[build_id] = BuildServing(
        policy=policy, gzip=gzipped, download_filename=download_filename(manifest.database.name, build_id)
    )
    return _BUILDS[build_id]


def build_policy(build_id: str) -> str:
    """The ``Content-Security-Policy`` the build's ``manifest.json`` records (``content_security_policy``; ``build_serving``)."""
    return build_serving(build_id).policy


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value (RFC 9110, section 12.5.3) allows gzip.

    ``gzip`` (or ``x-gzip``) with a q-value above 0, or else ``*`` with one; an empty value
    allows nothing but identity. ``"gzip, deflate, br"`` -> True; ``"gzip;q=0, *"`` -> False.
    """
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[coding.lower()] = quality
    for coding in ("gzip", "x-gzip"):
        if coding in qualities:
            return qualities[coding] > 0
    return qualities.get("*", 0.0) > 0


def _harden_preview(response: HttpResponse) -> HttpResponse:
    """Headers on every preview-origin answer (after ``_harden``): not framed, indexed, shared or told to others.

    The build's policy with ``frame-ancestors 'none'``; ``Referrer-Policy: no-referrer``,
    since the origin itself is the capability; every ``Cache-Control`` made ``private``, so no shared cache keeps serving a preview after
    its link expired.
    """
    # The build's policy, except that no page may frame a preview.
    response["Content-Security-Policy"] = re.sub(
        r"frame-ancestors [^;]*", "frame-ancestors 'none'", response["Content-Security-Policy"]
    )
    response["X-Frame-Options"] = "DENY"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    cache_control = response.get("Cache-Control", NO_CACHE)
    if not cache_control.startswith("private"):
        response["Cache-Control"] = "private, " + cache_control.removeprefix("public, ")
    return response


def _no_gallery() -> HttpResponse:
    return _page(404, "Not found", "No gallery at this address.")


def _bare_content_domain() -> HttpResponse:
    return _page(
        404,
        "No gallery here",
        "There is no gallery at this address: each gallery has an address of its own, "
        f"{content_origin('<gallery-id>')}/. Glasshouse itself is at",
        link=settings.APP_URL,
    )


def _not_found() -> HttpResponse:
    return _page(404, "Not found", "No file at this address.")


def _page(status: int, title: str, message: str, *, link: str = "") -> HttpResponse:
    """A small self-contained HTML page, ``Cache-Control: no-cache``; ``link``, if given, ends the message as a link."""
    anchor = f' <a href="{html.escape(link)}">{html.escape(link)}</a>.' if link else ""
    body = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}"
        "h1{font-size:1.4rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}{anchor}</p></body></html>\n"
    )
    response = HttpResponse(
        body, status=status, content_type=content_type_for("page.html")
    )
    response["Cache-Control"] = NO_CACHE
    return response
