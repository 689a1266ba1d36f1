"""A gallery's web app manifest (W3C "Web Application Manifest"): what lets a reader install it as an app.

Not the build manifest (``builder.manifest``, ``manifest.json``): this one is for browsers.
Every build writes ``builds/<build-id>/manifest.webmanifest`` and two icons,
``builds/<build-id>/icon-192.png`` and ``icon-512.png`` (``builder.card.render_icon``: the share
card in small). The content origin serves the build's manifest at the origin's root,
``/manifest.webmanifest`` (the URL map's ``server.webAppManifest``: the server answers it, never
Datasette), as ``application/manifest+json``; the icons are build files at
``/_build/<build-id>/icon-<size>.png``. The bootstrap page links it, and so does every page the
Service Worker answers (``builder/runtime/reader/js/web-app-manifest.mjs``, told by ``config.mjs``'s
``webAppManifest``), with ``<meta name="theme-color">``.

The manifest says: the gallery's title as ``name`` (at most ``NAME_MAX`` characters) and a
``short_name`` for launchers (at most ``SHORT_NAME_MAX``), its description (at most
``DESCRIPTION_MAX``), ``id``, ``start_url`` and ``scope`` all the origin's root (each gallery, and
each pinned version, is an origin of its own, so an installed gallery is the whole origin),
``display: standalone``, the share card's accent and paper as ``theme_color`` and
``background_color``, and the icons with ``purpose: any``. Titles come from publishers: they are
bounded here, whitespace collapsed and control characters dropped, before they reach the JSON.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builder.card import BACKGROUND_COLOR, THEME_COLOR
from builder.url_map import URL_MAP

#: The manifest's file name in a build (``builds/<build-id>/manifest.webmanifest``).
WEB_APP_MANIFEST_NAME = "manifest.webmanifest"
#: Where a gallery origin serves it: ``/manifest.webmanifest``.
WEB_APP_MANIFEST_URL = URL_MAP.server.web_app_manifest
#: Square icon sizes in px: 192 and 512, what Chromium, Android and the manifest guides ask for
#: (Chromium's install check wants one of at least 144).
ICON_SIZES = (192, 512)
#: Bounds in characters (Unicode code points). ``name`` shows in app lists and title bars; a
#: ``short_name`` of 12 fits under a launcher icon; the description is a line or two in a store.
NAME_MAX = 80
SHORT_NAME_MAX = 12
DESCRIPTION_MAX = 300
#: What an empty title becomes, as on the share card.
UNTITLED = "Untitled gallery"
ELLIPSIS = "…"


def icon_name(size: int) -> str:
    """The file name of the ``size`` px icon in a build: ``icon-192.png``."""
    return f"icon-{size}.png"


def clean_text(text: str) -> str:
    """``text`` on one line: control and format characters (Unicode C*) dropped, whitespace runs made one space, trimmed."""
    kept = "".join(" " if c.isspace() else c for c in text if c.isspace() or not unicodedata.category(c).startswith("C"))
    return " ".join(kept.split())


def bounded(text: str, limit: int) -> str:
    """``clean_text(text)`` of at most ``limit`` characters: a longer one is cut at a word if one ends
    in its second half, and ends in "…" (counted in ``limit``)."""
    text = clean_text(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def short_name(title: str) -> str:
    """A launcher label for ``title``: its whole words that fit ``SHORT_NAME_MAX`` characters,
    else its first word cut to fit and ending in "…". "Shared chinook.sqlite" -> "Shared"."""
    text = clean_text(title) or UNTITLED
    if len(text) <= SHORT_NAME_MAX:
        return text
    words = ""
    for word in text.split(" "):
        candidate = f"{words} {word}" if words else word
        if len(candidate) > SHORT_NAME_MAX:
            break
        words = candidate
    return words or text[: SHORT_NAME_MAX - len(ELLIPSIS)] + ELLIPSIS


@dataclass(frozen=True)
class WebAppIcon:
    """One icon of the manifest: ``src`` (a URL path on the gallery origin), a square ``size`` in px."""

    src: str
    size: int
    type: str = "image/png"
    purpose: str = "any"

    def to_dict(self) -> dict[str, str]:
        """``{"src", "sizes": "<n>x<n>", "type", "purpose"}``, the manifest's image resource."""
        return {"src": self.src, "sizes": f"{self.size}x{self.size}", "type": self.type, "purpose": self.purpose}


@dataclass(frozen=True, kw_only=True)
class WebAppManifest:
    """What ``manifest.webmanifest`` says (see the module's docstring); ``name`` and ``short_name`` bounded already."""

    name: str
    short_name: str
    description: str
    icons: tuple[WebAppIcon, ...]
    theme_color: str = THEME_COLOR
    background_color: str = BACKGROUND_COLOR
    id: str = "/"
    start_url: str = "/"
    scope: str = "/"
    display: str = "standalone"

    def to_dict(self) -> dict[str, Any]:
        """The manifest's JSON object, members in the order the spec lists them."""
        return {
            "id": self.id,
            "name": self.name,
            "short_name": self.short_name,
            "description": self.description,
            "start_url": self.start_url,
            "scope": self.scope,
            "display": self.display,
            "theme_color": self.theme_color,
            "background_color": self.background_color,
            "icons": [icon.to_dict() for icon in self.icons],
        }

    def to_json(self) -> str:
        """The text of ``manifest.webmanifest`` (UTF-8 JSON, non-ASCII kept as is)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"


def web_app_manifest(title: str, description: str, icons: Sequence[WebAppIcon]) -> WebAppManifest:
    """The web app manifest of a gallery titled ``title`` (an empty one is ``UNTITLED``), with
    ``description`` and ``icons``; every text bounded (``NAME_MAX``, ``SHORT_NAME_MAX``, ``DESCRIPTION_MAX``)."""
    name = bounded(title, NAME_MAX) or UNTITLED
    return WebAppManifest(
        name=name, short_name=short_name(name), description=bounded(description, DESCRIPTION_MAX), icons=tuple(icons)
    )


def head_tags(url: str = WEB_APP_MANIFEST_URL, theme_color: str = THEME_COLOR) -> str:
    """The bootstrap page's ``<link rel="manifest">`` and ``<meta name="theme-color">`` (values are the builder's own)."""
    return f'<link rel="manifest" href="{url}">\n<meta name="theme-color" content="{theme_color}">'
