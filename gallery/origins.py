"""Addresses of the content origins: each gallery's ``<gallery-id>.<CONTENT_DOMAIN>``, each build's
pinned ``<gallery-id>--<build-id>.<CONTENT_DOMAIN>`` (DESIGN.md, "Origins"). Preview labels are
``gallery.content.preview``'s.
"""

from __future__ import annotations

import re

from django.conf import settings

#: The first label of a content-origin host: ``<gallery-id>`` serves the live build,
#: ``<gallery-id>--<build-id>`` always serves that one build (a pinned version).
CONTENT_LABEL_RE = re.compile(r"(?P<gallery>[a-z][a-z0-9]{11})(?:--(?P<build>[a-z0-9]{16}))?")


def parse_content_label(label: str) -> tuple[str, str | None] | None:
    """Split a content-origin host label into ``(gallery_id, build_id or None)``.

    ``"abc123def456"`` -> ``("abc123def456", None)``;
    ``"abc123def456--0123456789abcdef"`` -> ``("abc123def456", "0123456789abcdef")``;
    anything else -> ``None``.
    """
    match = CONTENT_LABEL_RE.fullmatch(label)
    if match is None:
        return None
    return match["gallery"], match["build"]


def content_origin(label: str) -> str:
    """The origin ``"{CONTENT_SCHEME}://{label}.{CONTENT_DOMAIN}[:{CONTENT_PORT}]"`` (no trailing slash)."""
    port = f":{settings.CONTENT_PORT}" if settings.CONTENT_PORT else ""
    return f"{settings.CONTENT_SCHEME}://{label}.{settings.CONTENT_DOMAIN}{port}"
