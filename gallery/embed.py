"""Embeds: how a gallery view is put into another site's page, and how editors find out (oEmbed).

The contract between the app origin, the gallery origins and the readers' browsers:

- **Embed URL.** A gallery view ``<origin>/<view path>?<view query>`` is embedded as
  ``<origin>/-/embed/<view path>?<view query>``, where ``<origin>`` is the live gallery
  origin or a pinned build's origin (``Gallery.pinned_url``). The gallery origin answers
  it in embed mode: a compact view with an "Open full view" link. ``_glasshouse_chrome=1``
  in the query keeps Datasette's header and footer; the runtime strips every
  ``_glasshouse_*`` parameter before Datasette sees the request.
- **Height messages.** An embedded page posts ``{"type": "glasshouse:resize", "height": <int,
  CSS pixels of its content>}`` to ``window.parent`` (target origin ``"*"``) whenever its
  height changes. The app origin's ``/embed.js`` applies it to the ``iframe[data-glasshouse-embed]``
  whose ``contentWindow`` sent it, after checking the message's origin against the gallery origins.
  When ``/embed.js`` starts, it posts ``{"type": "glasshouse:measure"}`` to each embed, which
  answers with its height (it may have posted before the script arrived).
- **oEmbed 1.0** (oembed.com): ``<APP_URL>/oembed?url=<any gallery URL>&format=json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings

from builder.compat import tilde_encode
from builder.url_map import URL_MAP
from gallery.origins import content_origin, parse_content_label

#: Path prefix of embed mode on a gallery origin (``builder.url_map``).
EMBED_PREFIX = URL_MAP.embed
#: Query parameter that keeps Datasette's header and footer in embed mode.
CHROME_PARAM = URL_MAP.params.chrome
#: ``type`` of the height message an embedded gallery posts to its parent.
RESIZE_MESSAGE = "glasshouse:resize"
#: ``type`` of the message ``/embed.js`` sends an embed to ask for its height again.
MEASURE_MESSAGE = "glasshouse:measure"
#: ``sandbox`` of every embed snippet: never ``allow-top-navigation``.
SANDBOX = (
    "allow-scripts allow-same-origin allow-forms allow-popups "
    "allow-popups-to-escape-sandbox allow-downloads"
)


def oembed_url(target_url: str) -> str:
    """The oEmbed endpoint URL for ``target_url``: ``"<APP_URL>/oembed?url=<quoted>&format=json"``."""
    return f"{settings.APP_URL}/oembed?{urlencode({'url': target_url, 'format': 'json'})}"


#: Height of a snippet when nobody chose one, and the oEmbed width when no ``maxwidth`` is given (CSS px).
DEFAULT_HEIGHT = 600
DEFAULT_WIDTH = 800
#: Heights the embed panel accepts for a fixed-height snippet (CSS px).
MIN_HEIGHT = 100
MAX_HEIGHT = 5000
#: Largest content height ``/embed.js`` applies to an iframe (CSS px); anything above is ignored.
MAX_CONTENT_HEIGHT = 20_000
#: oEmbed ``cache_age`` in seconds: a live embed follows new builds, a pinned one never changes.
LIVE_CACHE_AGE = 3600
PINNED_CACHE_AGE = 7 * 24 * 3600
#: Prefix of the runtime's own query parameters, stripped before Datasette sees a request.
RUNTIME_PARAM_PREFIX = URL_MAP.params.prefix
#: Paths of the app origin that name a gallery: its page, ``/g/<gallery-id>/...``.
APP_GALLERY_PATH_RE = re.compile(r"/g/(?P<gallery>[a-z][a-z0-9]{11})/")


class InvalidGalleryURL(ValueError):
    """A URL that names no gallery view; ``args[0]`` says what was expected."""


@dataclass(frozen=True)
class EmbedTarget:
    """One gallery view to embed.

    ``view`` is a path on the gallery origin with its query (``"/chinook/Album?_sort=Title"``),
    never carrying ``_glasshouse_*`` parameters; ``build_id`` is ``None`` for the live
    origin (always the latest build) or a build id for its pinned origin; ``chrome`` keeps
    Datasette's header and footer.
    """

    gallery_id: str
    view: str = "/"
    build_id: str | None = None
    chrome: bool = False

    @property
    def origin(self) -> str:
        """The gallery origin serving this view: live, or the pinned build's (no trailing slash)."""
        label = f"{self.gallery_id}--{self.build_id}" if self.build_id else self.gallery_id
        return content_origin(label)

    @property
    def view_url(self) -> str:
        """The full (not embedded) view: ``<origin><view>``."""
        return self.origin + self.view

    @property
    def embed_url(self) -> str:
        """``<origin>/-/embed/<view path>?<view query>[&_glasshouse_chrome=1]``."""
        path, _, query = self.view.partition("?")
        if self.chrome:
            query = f"{query}&{CHROME_PARAM}=1" if query else f"{CHROME_PARAM}=1"
        return f"{self.origin}{EMBED_PREFIX}{path.lstrip('/')}" + (f"?{query}" if query else "")


def table_view(database: str, table: str) -> str:
    """The view path of ``table`` in ``database``: ``"/<database>/<table>"``, tilde-encoded."""
    return f"/{tilde_encode(database)}/{tilde_encode(table)}"


def query_view(database: str, query: str, params: dict[str, str] | None = None) -> str:
    """The view of canned query ``query`` with ``params``: ``"/<database>/<query>?<name>=<value>..."``."""
    path = f"/{tilde_encode(database)}/{tilde_encode(query)}"
    filled = {name: value for name, value in (params or {}).items() if value != ""}
    return path + (f"?{urlencode(filled)}" if filled else "")


#: A named parameter in a canned query's SQL, as Datasette finds them (``:name``).
_NAMED_PARAMETER_RE = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_SQL_STRING_RE = re.compile(r"'(?:[^']|'')*'")


def named_parameters(sql: str) -> list[str]:
    """The ``:name`` parameters of ``sql`` in order of first use, ignoring string literals and ``::`` casts."""
    found: dict[str, None] = {}
    for name in _NAMED_PARAMETER_RE.findall(_SQL_STRING_RE.sub("''", sql)):
        found.setdefault(name)
    return list(found)


def _app_hosts() -> set[str]:
    hosts = {host.lower() for host in settings.APP_HOSTS}
    app_host = urlsplit(settings.APP_URL).hostname
    if app_host:
        hosts.add(app_host.lower())
    return hosts


def parse_gallery_url(url: str) -> EmbedTarget:
    """Turn any URL of a gallery view into an ``EmbedTarget``.

    Accepts the live origin (``http(s)://<id>.<CONTENT_DOMAIN>[:port]/<view>``), a pinned
    origin (``<id>--<build-id>.<CONTENT_DOMAIN>``), embed URLs (``/-/embed/<view>``,
    whose ``_glasshouse_chrome`` is kept as ``chrome``) and the gallery page on the app
    origin (``<APP_URL>/g/<id>/``, meaning the whole app). Other ``_glasshouse_*``
    parameters and the fragment are dropped; the path stays as encoded. Whether the
    gallery and build exist is not checked here. Raises ``InvalidGalleryURL`` otherwise.
    """
    expected = (
        f"expected a gallery address such as {content_origin('<gallery-id>')}/ "
        f"or {settings.APP_URL}/g/<gallery-id>/"
    )
    parts = urlsplit(url.strip())
    try:
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidGalleryURL(f"{url!r} has an invalid port; {expected}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidGalleryURL(f"{url!r} is not an http(s) address; {expected}")
    suffix = "." + settings.CONTENT_DOMAIN
    if host.endswith(suffix):
        parsed = parse_content_label(host.removesuffix(suffix))
        if parsed is None:
            raise InvalidGalleryURL(f"{host} is not a gallery origin; {expected}")
        gallery_id, build_id = parsed
        path = parts.path or "/"
        if path == EMBED_PREFIX.rstrip("/") or path.startswith(EMBED_PREFIX):
            path = "/" + path.removeprefix(EMBED_PREFIX.rstrip("/")).lstrip("/")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        chrome = any(name == CHROME_PARAM and value not in ("", "0") for name, value in pairs)
        kept = [(name, value) for name, value in pairs if not name.startswith(RUNTIME_PARAM_PREFIX)]
        view = path + (f"?{urlencode(kept)}" if kept else "")
        return EmbedTarget(gallery_id=gallery_id, view=view, build_id=build_id, chrome=chrome)
    if host in _app_hosts():
        match = APP_GALLERY_PATH_RE.match(parts.path)
        if match is None:
            raise InvalidGalleryURL(f"{url!r} is an app page but not a gallery's (/g/<gallery-id>/); {expected}")
        return EmbedTarget(gallery_id=match["gallery"])
    raise InvalidGalleryURL(f"{host} is not a Glasshouse gallery; {expected}")


def embed_snippet(target: EmbedTarget, *, title: str, height: int, fit_content: bool) -> str:
    """The HTML an author pastes into an article to embed ``target``; every value HTML-escaped.

    A plain ``<iframe>`` of ``target.embed_url`` with ``SANDBOX``, ``loading="lazy"``, the
    ``title``, width 100% and ``height`` CSS px (an ``int`` of at least 1, else
    ``ValueError``); with ``fit_content`` also ``<script async src="<APP_URL>/embed.js">``,
    which then makes the iframe follow its content's height.
    """
    if not isinstance(height, int) or height < 1:
        raise ValueError(f"height must be a positive number of pixels, not {height!r}")
    iframe = (
        f'<iframe src="{escape(target.embed_url)}" title="{escape(title)}" sandbox="{escape(SANDBOX)}" '
        f'loading="lazy" width="100%" height="{height}" style="border:0;width:100%;height:{height}px" '
        "data-glasshouse-embed></iframe>"
    )
    if not fit_content:
        return iframe
    return f'{iframe}\n<script async src="{escape(settings.APP_URL)}/embed.js"></script>'


def clean_height(value: str | None) -> int:
    """Parse a fixed embed height from a form or query value (CSS px).

    ``None`` or ``""`` -> ``DEFAULT_HEIGHT``. Raises ``ValueError`` with a message for the
    reader unless it is a whole number from ``MIN_HEIGHT`` to ``MAX_HEIGHT``.
    """
    if value is None or not value.strip():
        return DEFAULT_HEIGHT
    text = value.strip().removesuffix("px")
    if not text.isdigit() or not MIN_HEIGHT <= int(text) <= MAX_HEIGHT:
        raise ValueError(f"The height must be a whole number of pixels from {MIN_HEIGHT} to {MAX_HEIGHT}, not {value!r}.")
    return int(text)


def gallery_origin_pattern() -> str:
    """A JavaScript regular expression source matching exactly the gallery origins, live and pinned.

    ``^<CONTENT_SCHEME>://<gallery-id>(--<build-id>)?\\.<CONTENT_DOMAIN>(:<CONTENT_PORT>)$``,
    from the settings at call time. ``/embed.js`` accepts height messages only from these.
    """
    domain = re.escape(settings.CONTENT_DOMAIN).replace("\\-", "-")
    port = f":{settings.CONTENT_PORT}" if settings.CONTENT_PORT else ""
    return rf"^{settings.CONTENT_SCHEME}://[a-z][a-z0-9]{{11}}(?:--[a-z0-9]{{16}})?\.{domain}{port}$"


def oembed_response(
    target: EmbedTarget,
    *,
    title: str,
    maxwidth: int | None = None,
    maxheight: int | None = None,
    thumbnail_url: str | None = None,
    thumbnail_size: tuple[int, int] = (1200, 630),
) -> dict[str, object]:
    """The oEmbed 1.0 ``rich`` response (oembed.com, section 2.3.4) for ``target``, as a dict.

    ``width``/``height`` (CSS px) are ``DEFAULT_WIDTH``/``DEFAULT_HEIGHT`` brought under
    ``maxwidth``/``maxheight``; ``html`` is ``embed_snippet`` at that height. With a
    ``thumbnail_url`` (``thumbnail_size`` px), the thumbnail is scaled down, keeping its
    shape, to fit under both maxima. ``cache_age`` (s) is longer for a pinned build.
    """
    width = min(DEFAULT_WIDTH, maxwidth) if maxwidth else DEFAULT_WIDTH
    height = min(DEFAULT_HEIGHT, maxheight) if maxheight else DEFAULT_HEIGHT
    response: dict[str, object] = {
        "type": "rich",
        "version": "1.0",
        "title": title,
        "provider_name": "Glasshouse",
        "provider_url": f"{settings.APP_URL}/",
        "cache_age": PINNED_CACHE_AGE if target.build_id else LIVE_CACHE_AGE,
        "html": embed_snippet(target, title=title, height=height, fit_content=False),
        "width": width,
        "height": height,
    }
    if thumbnail_url:
        full_width, full_height = thumbnail_size
        scale = min(1.0, (maxwidth or full_width) / full_width, (maxheight or full_height) / full_height)
        response.update(
            thumbnail_url=thumbnail_url,
            thumbnail_width=max(1, int(full_width * scale)),
            thumbnail_height=max(1, int(full_height * scale)),
        )
    return response
