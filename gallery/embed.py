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
- **oEmbed 1.0** (oembed.com): ``<APP_URL>/oembed?url=<any gallery URL>&format=json``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings

#: Path prefix of embed mode on a gallery origin.
EMBED_PREFIX = "/-/embed/"
#: Query parameter that keeps Datasette's header and footer in embed mode.
CHROME_PARAM = "_glasshouse_chrome"
#: ``type`` of the height message an embedded gallery posts to its parent.
RESIZE_MESSAGE = "glasshouse:resize"
#: ``sandbox`` of every embed snippet: never ``allow-top-navigation``.
SANDBOX = (
    "allow-scripts allow-same-origin allow-forms allow-popups "
    "allow-popups-to-escape-sandbox allow-downloads"
)


def oembed_url(target_url: str) -> str:
    """The oEmbed endpoint URL for ``target_url``: ``"<APP_URL>/oembed?url=<quoted>&format=json"``."""
    return f"{settings.APP_URL}/oembed?{urlencode({'url': target_url, 'format': 'json'})}"
