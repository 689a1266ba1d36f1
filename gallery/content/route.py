"""A content-origin request answered: the label resolved, the path routed to a file of the served build."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from builder.download import DOWNLOAD_NAME
from builder.web_app_manifest import WEB_APP_MANIFEST_NAME
from gallery.content.bootstrap import report_redirect, serve_bootstrap
from gallery.content.download import serve_download
from gallery.content.files import serve_key
from gallery.content.headers import harden
from gallery.content.pages import killswitch, not_found, notice_page, with_headers
from gallery.content.paths import (
    BUILD_PREFIX,
    DOWNLOAD_PREFIX,
    IMMUTABLE,
    NO_CACHE,
    PRIVATE_NO_STORE,
    REPORT_PATH,
    ROBOTS_PATH,
    RUNTIME_PREFIX,
    SERVICE_WORKER_PATH,
    SHA256_RE,
    STATIC_PREFIXES,
    WEB_APP_MANIFEST_PATH,
    WHEELS_PREFIX,
)
from gallery.content.preview import is_preview_label
from gallery.content.resolve import ServedBuild, Unserved, resolve, resolve_preview

logger = logging.getLogger(__name__)


def serve_content(request: HttpRequest, label: str) -> HttpResponseBase:
    """Answer ``request`` for the content origin ``label`` (see the module's map).

    ``label`` is ``<gallery-id>`` (follows the live build), ``<gallery-id>--<build-id>``
    (a pinned version) or a preview label (``gallery.content.preview``). Moderation is checked
    before anything else, for every build: only an approved build is served on a public
    origin; a preview's signature and expiry stand in for approval.
    """
    if request.method not in ("GET", "HEAD"):
        response = notice_page(
            405,
            "Method not allowed",
            "Galleries are read-only: only GET and HEAD are allowed.",
        )
        response["Allow"] = "GET, HEAD"
        return harden(response, None)
    served = resolve_preview(label) if is_preview_label(label) else resolve(request, label)
    if isinstance(served, Unserved):
        # Nothing is published here (pending, rejected, taken down, deleted, unknown build, an
        # ended preview): a Service Worker a reader installed earlier is replaced by the kill
        # switch, which empties its caches and unregisters it. Not on 503: a storage fault is no
        # removal. Not for a forged or malformed preview label either: the kill switch is a 200,
        # and such a label must serve nothing at all (no worker can have been installed there).
        if request.path_info == SERVICE_WORKER_PATH and served.killswitch:
            return harden(killswitch(request), None)
        return harden(served.response, None)
    return harden(route(request, served), served)


def route(request: HttpRequest, served: ServedBuild) -> HttpResponseBase:
    """Map ``request``'s path to a file of ``served.build`` (see the module's map)."""
    path = request.path_info
    build = served.build_id
    if path == ROBOTS_PATH:
        rules = "Disallow: /" if served.hidden else "Allow: /"
        response = HttpResponse(f"User-agent: *\n{rules}\n", content_type="text/plain; charset=utf-8")
        return with_headers(response, {"Cache-Control": NO_CACHE})
    if path == SERVICE_WORKER_PATH:
        return serve_key(
            request,
            f"builds/{build}/sw.js",
            PRIVATE_NO_STORE if served.preview else NO_CACHE,
            {"Service-Worker-Allowed": "/"},
            build_id=build,
        )
    if path == WEB_APP_MANIFEST_PATH:
        # At the origin's root, as the pages link it; the build's own (a build from before web app
        # manifests has none: 404). Revalidated like /sw.js, since the live build changes under it.
        return serve_key(
            request,
            f"builds/{build}/{WEB_APP_MANIFEST_NAME}",
            PRIVATE_NO_STORE if served.preview else NO_CACHE,
            build_id=build,
        )
    if path.startswith(RUNTIME_PREFIX):
        # Shared by every build: the served build's manifest says whether a gzip copy is stored.
        return serve_key(request, "runtime/" + path.removeprefix(RUNTIME_PREFIX), IMMUTABLE, build_id=build)
    if path.startswith(WHEELS_PREFIX):
        sha256, _, filename = path.removeprefix(WHEELS_PREFIX).partition("/")
        if not SHA256_RE.fullmatch(sha256) or not filename or "/" in filename:
            return not_found()
        return serve_key(request, f"wheels/{sha256}/{filename}", IMMUTABLE, build_id=build)
    if path.startswith(BUILD_PREFIX):
        build_id, _, rest = path.removeprefix(BUILD_PREFIX).partition("/")
        # The stored zip only ever goes out through /_download/ (rate-limited, as an attachment).
        if build_id != build or not rest or rest == DOWNLOAD_NAME:
            return not_found()
        return serve_key(request, f"builds/{build}/{rest}", IMMUTABLE, build_id=build)
    if path.startswith(STATIC_PREFIXES):
        # Datasette's static files, written into the bundle at their URL paths; the URL is not
        # versioned, so a new live build must be revalidated (the ETag names the build's key).
        return serve_key(request, f"builds/{build}{path}", NO_CACHE, build_id=build)
    if path.startswith(DOWNLOAD_PREFIX):
        return serve_download(request, served, path.removeprefix(DOWNLOAD_PREFIX))
    if path == REPORT_PATH:
        return report_redirect(request, served)
    # Every other path is a page of the Datasette app: the bootstrap page boots
    # the Service Worker, which then answers the same URL inside the browser.
    page = serve_bootstrap(request, served)
    if served.hidden:
        page["X-Robots-Tag"] = "noindex"
    return page
