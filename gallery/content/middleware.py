"""The middleware that answers every request for a content origin before the app sees it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.http.response import HttpResponseBase

from gallery.content.headers import clear_cookies, harden, harden_preview, strict_transport_security
from gallery.content.pages import bare_content_domain_page
from gallery.content.preview import is_preview_label
from gallery.content.route import serve_content

logger = logging.getLogger(__name__)


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

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        label = content_origin_label(request)
        if label is None:
            if not is_bare_content_domain(request):
                return self.get_response(request)
            # The content domain is galleries' only: the app never answers on it (an app page
            # there would share the site of every gallery).
            response = harden(bare_content_domain_page(), None)
        else:
            response = serve_content(request, label)
            clear_cookies(request, response)
            if is_preview_label(label):
                response = harden_preview(response)
        strict_transport_security(request, response)
        return response
