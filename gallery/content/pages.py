"""Small answers the content origin writes itself: the notice pages (404, 410, 403, 503), the kill-switch worker."""

from __future__ import annotations

import html
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from builder.runtime import KILLSWITCH
from builder.storage import StorageError, content_type_for
from gallery.content.paths import NO_CACHE
from gallery.origins import content_origin

logger = logging.getLogger(__name__)


def killswitch_source() -> bytes:
    """Return the kill-switch Service Worker (``builder/runtime/reader/killswitch.js``). Raises ``OSError`` if absent."""
    return KILLSWITCH.read_bytes()


def killswitch(request: HttpRequest) -> HttpResponse:
    try:
        body = killswitch_source()
    except OSError as exc:
        logger.error("kill-switch worker missing: %s", exc)
        return notice_page(
            503, "Unavailable", "The kill-switch worker is missing on the server."
        )
    response = HttpResponse(
        b"" if request.method == "HEAD" else body,
        content_type=content_type_for("sw.js"),
    )
    response["Content-Length"] = str(len(body))
    return with_headers(
        response, {"Cache-Control": NO_CACHE, "Service-Worker-Allowed": "/"}
    )


def with_headers[R: HttpResponseBase](response: R, headers: dict[str, str]) -> R:
    for name, value in headers.items():
        response[name] = value
    return response


def storage_unavailable(key: str, exc: StorageError) -> HttpResponse:
    logger.error("storage failed serving %s: %s", key, exc)
    return notice_page(503, "Storage unavailable", "Storage is unavailable, try again shortly.")


def no_gallery() -> HttpResponse:
    return notice_page(404, "Not found", "No gallery at this address.")


def bare_content_domain_page() -> HttpResponse:
    return notice_page(
        404,
        "No gallery here",
        "There is no gallery at this address: each gallery has an address of its own, "
        f"{content_origin('<gallery-id>')}/. Glasshouse itself is at",
        link=settings.APP_URL,
    )


def not_found() -> HttpResponse:
    return notice_page(404, "Not found", "No file at this address.")


def notice_page(status: int, title: str, message: str, *, link: str = "") -> HttpResponse:
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
