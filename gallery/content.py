"""The content origin: serve each gallery's bundle at ``<gallery-id>.<CONTENT_DOMAIN>``.

``ContentOriginMiddleware`` sits first in ``MIDDLEWARE``. A request whose host
(port stripped) is a subdomain of ``CONTENT_DOMAIN`` is answered here and never
reaches the app's URLs, sessions, CSRF or X-Frame-Options; every other host
passes through to the app. In production nginx serves the same map from S3.

Map, for a public gallery whose live build is ``<live>`` (storage keys as in
DESIGN.md, "Bundle"):

=================================  ==========================================  ============
request path                       storage key                                 Cache-Control
=================================  ==========================================  ============
``/sw.js``                         ``builds/<live>/sw.js``                     no-cache
``/_runtime/<rest>``               ``runtime/<rest>``                          immutable
``/_wheels/<sha256>/<file>``       ``wheels/<sha256>/<file>``                  immutable
``/_build/<live>/<rest>``          ``builds/<live>/<rest>``                    immutable
``/-/static/<rest>``               ``builds/<live>/-/static/<rest>``           no-cache
``/-/static-plugins/<rest>``       ``builds/<live>/-/static-plugins/<rest>``   no-cache
anything else (app deep links)     ``builds/<live>/index.html``                no-cache
=================================  ==========================================  ============

Unknown gallery: 404. Not approved or no live build: 404. Taken down: 410,
except ``/sw.js``, which is the kill-switch worker. Only GET and HEAD (else
405). Content types come from ``builder.storage.content_type_for(key)``, never
from the request. Every answer carries ``X-Content-Type-Options: nosniff``,
``Content-Security-Policy: frame-ancestors *`` (galleries are embeddable) and
no cookies.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.request import split_domain_port
from django.utils.http import parse_etags

from builder.storage import MissingKey, StorageError, check_key, content_type_for
from gallery.models import GALLERY_ID_RE, Gallery
from gallery.storage import get_storage

logger = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: Datasette's and the plugins' static files (builder/runtime/js/routes.mjs, STATIC_PREFIXES).
STATIC_PREFIXES = ("/-/static/", "/-/static-plugins/")
_CHUNK = 64 * 1024


def killswitch_source() -> bytes:
    """Return the kill-switch Service Worker (``builder/runtime/killswitch.js``). Raises ``OSError`` if absent."""
    return resources.files("builder").joinpath("runtime", "killswitch.js").read_bytes()


def content_origin_label(request: HttpRequest) -> str | None:
    """Return the label before ``.<CONTENT_DOMAIN>`` in the request's host, or ``None`` for an app host.

    ``"abc123def456.localhost:8000"`` -> ``"abc123def456"``; ``"localhost:8000"``
    -> ``None``. A host Django refuses (``ALLOWED_HOSTS``) is left to the app,
    which answers 400.
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


class ContentOriginMiddleware:
    """Answer requests for gallery content origins; pass app-origin requests on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        label = content_origin_label(request)
        if label is None:
            return self.get_response(request)
        return _harden(serve_content(request, label))


def serve_content(request: HttpRequest, label: str) -> HttpResponse:
    """Answer ``request`` for the content origin of gallery ``label`` (see the module's map)."""
    if request.method not in ("GET", "HEAD"):
        response = _page(
            405,
            "Method not allowed",
            "Galleries are read-only: only GET and HEAD are allowed.",
        )
        response["Allow"] = "GET, HEAD"
        return response
    if not GALLERY_ID_RE.fullmatch(label):
        return _no_gallery()
    row = (
        Gallery.objects.filter(pk=label)
        .values_list("moderation_state", "live_build_id", "visibility", "plugins")
        .first()
    )
    if row is None:
        return _no_gallery()
    moderation_state, live, visibility, plugins = row
    # Crawlers run no Service Worker, so the server answers for them: unlisted galleries and
    # those with datasette-block-robots ask not to be indexed.
    hidden = visibility == Gallery.Visibility.UNLISTED or "datasette-block-robots" in plugins
    path = request.path_info

    if moderation_state == Gallery.ModerationState.TAKEN_DOWN:
        if path == "/sw.js":
            return _killswitch(request)
        return _page(410, "Gone", "This gallery was taken down.")
    if moderation_state != Gallery.ModerationState.APPROVED or live is None:
        return _page(404, "Not published", "This gallery is not published (yet).")

    if path == "/robots.txt":
        rules = "Disallow: /" if hidden else "Allow: /"
        response = HttpResponse(f"User-agent: *\n{rules}\n", content_type="text/plain; charset=utf-8")
        return _with_headers(response, {"Cache-Control": NO_CACHE})
    if path == "/sw.js":
        return _serve_key(
            request, f"builds/{live}/sw.js", NO_CACHE, {"Service-Worker-Allowed": "/"}
        )
    if path.startswith("/_runtime/"):
        return _serve_key(
            request, "runtime/" + path.removeprefix("/_runtime/"), IMMUTABLE
        )
    if path.startswith("/_wheels/"):
        sha256, _, filename = path.removeprefix("/_wheels/").partition("/")
        if not SHA256_RE.fullmatch(sha256) or not filename or "/" in filename:
            return _not_found()
        return _serve_key(request, f"wheels/{sha256}/{filename}", IMMUTABLE)
    if path.startswith("/_build/"):
        build_id, _, rest = path.removeprefix("/_build/").partition("/")
        if build_id != live or not rest:
            return _not_found()
        return _serve_key(request, f"builds/{live}/{rest}", IMMUTABLE)
    if path.startswith(STATIC_PREFIXES):
        # Datasette's static files, written into the bundle at their URL paths; the URL is not
        # versioned, so a new live build must be revalidated (the ETag names the build's key).
        return _serve_key(request, f"builds/{live}{path}", NO_CACHE)
    # Every other path is a page of the Datasette app: the bootstrap page boots
    # the Service Worker, which then answers the same URL inside the browser.
    response = _serve_key(request, f"builds/{live}/index.html", NO_CACHE)
    if hidden:
        response["X-Robots-Tag"] = "noindex"
    return response


def _serve_key(
    request: HttpRequest,
    key: str,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
) -> HttpResponse:
    """Stream storage ``key`` with its fixed content type, or answer 304/404/503."""
    try:
        check_key(key)
    except ValueError:
        return _not_found()
    headers = {
        "Cache-Control": cache_control,
        "ETag": _etag(key),
        **(extra_headers or {}),
    }
    if headers["ETag"] in parse_etags(request.headers.get("If-None-Match", "")):
        # Keys under builds/<id>/, runtime/ and wheels/ never change, so the key names the bytes.
        return _with_headers(HttpResponse(status=304), headers)
    content_type = content_type_for(key)
    head = request.method == "HEAD"
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
        logger.error("storage failed serving %s: %s", key, exc)
        return _page(
            503, "Storage unavailable", "Storage is unavailable, try again shortly."
        )
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


def _harden(response: HttpResponse) -> HttpResponse:
    """Headers on every content-origin answer: any site may frame a gallery (no X-Frame-Options)."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "frame-ancestors *"
    response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


def _no_gallery() -> HttpResponse:
    return _page(404, "Not found", "No gallery at this address.")


def _not_found() -> HttpResponse:
    return _page(404, "Not found", "No file at this address.")


def _page(status: int, title: str, message: str) -> HttpResponse:
    """A small self-contained HTML page, ``Cache-Control: no-cache``."""
    body = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}"
        "h1{font-size:1.4rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>\n"
    )
    response = HttpResponse(
        body, status=status, content_type=content_type_for("page.html")
    )
    response["Cache-Control"] = NO_CACHE
    return response
