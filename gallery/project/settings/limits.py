"""What publishers and readers may do, and how much: upload sizes and rates, the client address
that rate limits count, publishers' quotas, preview links, reports, self-host downloads, view counts."""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

from gallery.project.env import env_bool, env_int, env_rate, env_str

# --- Uploads --------------------------------------------------------------------

#: The reader's tab holds the whole database in memory (MEMFS owns one buffer of it, outside the
#: wasm heap): a 1.06 GB database opened in Chromium 156 with the tab's renderers peaking at 1.3x
#: its size (README, "Big databases"); nothing larger was measured.
UPLOAD_HARD_CAP_BYTES = 1024 * 1024 * 1024
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 100 * 1024 * 1024, minimum=1)
if UPLOAD_MAX_BYTES > UPLOAD_HARD_CAP_BYTES:
    raise ImproperlyConfigured(
        f"UPLOAD_MAX_BYTES ({UPLOAD_MAX_BYTES}) may not exceed the hard cap of {UPLOAD_HARD_CAP_BYTES} bytes "
        "(1 GiB, the largest database measured to open in a reader's browser)"
    )
#: Largest database a CSV, TSV, JSON or Excel upload may become (builder.tabular): text grows as
#: SQLite pages and full-text indexes; twice the upload cap by default, never over the hard cap.
CONVERTED_MAX_BYTES = env_int("CONVERTED_MAX_BYTES", min(2 * UPLOAD_MAX_BYTES, UPLOAD_HARD_CAP_BYTES), minimum=1)
if CONVERTED_MAX_BYTES > UPLOAD_HARD_CAP_BYTES:
    raise ImproperlyConfigured(
        f"CONVERTED_MAX_BYTES ({CONVERTED_MAX_BYTES}) may not exceed the hard cap of {UPLOAD_HARD_CAP_BYTES} bytes"
    )
#: Form fields other than files; the file itself is not counted by this limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
#: 0: every uploaded file is spooled to FILE_UPLOAD_TEMP_DIR, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_PERMISSIONS = 0o600
#: The only upload handler: spools one file per request and stops at UPLOAD_MAX_BYTES while the
#: body arrives, removing the partial file (gallery.upload_limits).
FILE_UPLOAD_HANDLERS = ["gallery.upload_limits.CappedUploadHandler"]
#: django-ratelimit rate for anonymous uploads per client IP, e.g. "10/h".
UPLOAD_RATE_LIMIT = env_rate("UPLOAD_RATE_LIMIT", "10/h")
#: django-ratelimit rates for a publisher's rebuilds and new versions together (each runs a whole
#: build): per publisher (the account, or the address of a management-link holder) and per
#: client address, whoever is signed in. A gallery also builds one version at a time.
BUILD_RATE_LIMIT = env_rate("BUILD_RATE_LIMIT", "12/h")
BUILD_RATE_LIMIT_PER_ADDRESS = env_rate("BUILD_RATE_LIMIT_PER_ADDRESS", "30/h")
#: request.META key of the header in which the reverse proxy passes the client's address
#: (gallery.ratelimits.client_ip): HTTP_X_REAL_IP behind deploy/nginx/app.conf, or
#: HTTP_X_FORWARDED_FOR (its right-most address counts). Empty: REMOTE_ADDR, for a server
#: reached directly; never set it without a proxy that overwrites the header, or clients
#: choose their own address. Read from RATELIMIT_IP_META_KEY, django-ratelimit's name for it.
CLIENT_IP_META_KEY = env_str("RATELIMIT_IP_META_KEY", "")
if CLIENT_IP_META_KEY and not re.fullmatch(r"REMOTE_ADDR|HTTP_[A-Z0-9_]+", CLIENT_IP_META_KEY):
    raise ImproperlyConfigured(
        "RATELIMIT_IP_META_KEY must be a request.META key of a header such as HTTP_X_REAL_IP "
        f"(HTTP_ + the header name in capitals, dashes as underscores), or empty, not {CLIENT_IP_META_KEY!r}"
    )
#: django-ratelimit's key="ip" asks gallery.ratelimits.client_ip, which reads CLIENT_IP_META_KEY.
RATELIMIT_IP_META_KEY = "gallery.ratelimits.client_ip"
#: Whether people without an account may publish (rate-limited, moderated, with a private
#: management link); off: the publish form asks them to log in or sign up.
ANONYMOUS_UPLOADS = env_bool("ANONYMOUS_UPLOADS", True)

# --- Publishers' quotas (signed-in publishers; see gallery.services.check_quota) ----

#: Galleries one publisher may keep (deleted ones do not count).
PUBLISHER_MAX_GALLERIES = env_int("PUBLISHER_MAX_GALLERIES", 20, minimum=1)
#: Bytes one publisher's galleries may keep in storage: uploads plus bundles (default 2 GiB).
PUBLISHER_MAX_STORED_BYTES = env_int("PUBLISHER_MAX_STORED_BYTES", 2 * 1024**3, minimum=1)
#: Builds of one publisher's galleries that may be queued or running at once.
PUBLISHER_MAX_CONCURRENT_BUILDS = env_int("PUBLISHER_MAX_CONCURRENT_BUILDS", 2, minimum=1)

# --- Previews (gallery.content.preview) ----------------------------------------------------

#: Seconds a preview link (``gallery.content.preview.preview_url``) stays valid, at least (rounded up
#: to the next hour). A day: the queue and "My galleries" mint a fresh link on every page view,
#: so a link only has to outlast one review, and anyone holding it sees the unmoderated
#: gallery until it expires (a forwarded link, browser history, a Referer header).
PREVIEW_LIFETIME = env_int("PREVIEW_LIFETIME", 24 * 3600, minimum=60)

# --- Reports from readers (gallery.views.reports.gallery_report, services.reports.record_report) ----

#: django-ratelimit rate for report submissions per client IP, e.g. "5/h".
REPORT_RATE_LIMIT = env_rate("REPORT_RATE_LIMIT", "5/h")
#: Distinct reporters after whose reports an approved gallery is taken down for review; 0: never.
REPORTS_TAKEDOWN_THRESHOLD = env_int("REPORTS_TAKEDOWN_THRESHOLD", 3, minimum=0)

# --- Self-host downloads (/_download/<build-id>.zip on a content origin, gallery.content) ----

#: django-ratelimit rate for self-host zips served per client IP (IPv6: per /64), e.g. "30/h".
DOWNLOAD_RATE_LIMIT = env_rate("DOWNLOAD_RATE_LIMIT", "30/h")

# --- View counts (gallery.view_counts) --------------------------------------------

#: Seconds between two flushes of the gallery views counted in Redis into ``Gallery.view_count``
#: (Celery beat's ``flush-view-counts``); without ``REDIS_URL``, each web process writes its own
#: counts at most this long after a view. "My galleries" lags the page loads by up to this long.
VIEW_COUNT_FLUSH_INTERVAL = env_int("VIEW_COUNT_FLUSH_INTERVAL", 60, minimum=1)
