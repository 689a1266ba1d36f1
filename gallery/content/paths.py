"""The content origin's paths and cache policies: what each path prefix serves, and for how long."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)


IMMUTABLE = "public, max-age=31536000, immutable"


NO_CACHE = "no-cache"


#: The bootstrap page and /sw.js of a preview: never stored, so an expired link serves nothing.
PRIVATE_NO_STORE = "private, no-store"


SHA256_RE = re.compile(r"[0-9a-f]{64}")


#: Datasette's and the plugins' static files (builder/runtime/reader/js/request-kind.mjs, STATIC_PREFIXES).
STATIC_PREFIXES = ("/-/static/", "/-/static-plugins/")


#: Path prefix of the self-host download: ``/_download/<build-id>.zip``.
DOWNLOAD_PREFIX = "/_download/"


#: Where the footer's "Report" link points (builder/runtime/reader/js/request-kind.mjs, SERVER_PATHS).
REPORT_PATH = "/_report"


#: Media type of oEmbed discovery links (oEmbed 1.0, section 4).
OEMBED_TYPE = "application/json+oembed"
