"""The content origin's paths and cache policies: what each path prefix serves, and for how long.

The paths come from the gallery origin's URL map (``builder.url_map``), which the browser
runtime reads too, so the server and the reader's Service Worker agree on which paths are theirs.
"""

from __future__ import annotations

import logging
import re

from builder.url_map import URL_MAP

logger = logging.getLogger(__name__)


IMMUTABLE = "public, max-age=31536000, immutable"


NO_CACHE = "no-cache"


#: The bootstrap page and /sw.js of a preview: never stored, so an expired link serves nothing.
PRIVATE_NO_STORE = "private, no-store"


SHA256_RE = re.compile(r"[0-9a-f]{64}")


#: The Service Worker script, ``/sw.js``: the build's, or the kill switch where nothing is served.
SERVICE_WORKER_PATH = URL_MAP.server.service_worker


#: Robots rules, ``/robots.txt``.
ROBOTS_PATH = URL_MAP.server.robots


#: The shared Pyodide runtime files: ``/_runtime/<rest>``.
RUNTIME_PREFIX = URL_MAP.store.runtime


#: Wheels, content-addressed: ``/_wheels/<sha256>/<file>``.
WHEELS_PREFIX = URL_MAP.store.wheels


#: A build's own files: ``/_build/<build-id>/<rest>``.
BUILD_PREFIX = URL_MAP.store.build


#: Datasette's and the plugins' static files: ``/-/static/``, ``/-/static-plugins/``.
STATIC_PREFIXES = URL_MAP.static


#: Path prefix of the self-host download: ``/_download/<build-id>.zip``.
DOWNLOAD_PREFIX = URL_MAP.server.download


#: The build's web app manifest, ``/manifest.webmanifest`` (``builder.web_app_manifest``): what
#: makes a gallery installable; served like ``/sw.js``, from the build the origin serves.
WEB_APP_MANIFEST_PATH = URL_MAP.server.web_app_manifest


#: Where the footer's "Report" link points: ``/_report``.
REPORT_PATH = URL_MAP.server.report


#: Media type of oEmbed discovery links (oEmbed 1.0, section 4).
OEMBED_TYPE = "application/json+oembed"
