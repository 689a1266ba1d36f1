"""The security headers of every content-origin answer, previews' stricter ones, HSTS and cookie clearing."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from builder.csp import gallery_policy, security_headers
from gallery.content.files import build_policy
from gallery.content.paths import (
    BUILD_PREFIX,
    DOWNLOAD_PREFIX,
    NO_CACHE,
    RUNTIME_PREFIX,
    STATIC_PREFIXES,
    WHEELS_PREFIX,
)
from gallery.content.resolve import ServedBuild

logger = logging.getLogger(__name__)


def harden(response: HttpResponseBase, served: ServedBuild | None) -> HttpResponseBase:
    """Set ``builder.csp.security_headers`` on a content-origin answer (see the module's docstring).

    ``served`` is the build the answer comes from, or ``None`` where none is served (the
    policy of a gallery without plugins, and ``no-referrer``). Any site may frame a
    gallery: no X-Frame-Options.
    """
    policy = build_policy(served.build_id) if served is not None else gallery_policy(())
    for name, value in security_headers(policy, unlisted=served is None or served.unlisted):
        response[name] = value
    return response


def strict_transport_security(request: HttpRequest, response: HttpResponseBase) -> None:
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
_NO_CLEAR_SITE_DATA_PREFIXES = (RUNTIME_PREFIX, WHEELS_PREFIX, BUILD_PREFIX, *STATIC_PREFIXES, DOWNLOAD_PREFIX)


def clear_cookies(request: HttpRequest, response: HttpResponseBase) -> None:
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


def harden_preview(response: HttpResponseBase) -> HttpResponseBase:
    """Headers on every preview-origin answer (after ``harden``): not framed, indexed, shared or told to others.

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
