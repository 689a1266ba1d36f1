"""Django settings for Glasshouse, read from the environment.

A bare checkout runs with no variables set: everything lives under the data
folder (``GLASSHOUSE_DATA_DIR``, default ``<repo>/var``), with a SQLite database,
a filesystem Celery broker and local-folder storage. Production sets
``DATABASE_URL``, ``REDIS_URL``, ``S3_BUCKET`` and friends (see DESIGN.md,
"Configuration"). Every variable is read through the small typed helpers below;
a value that does not parse raises ``ImproperlyConfigured`` naming the variable.

This module only reads: it creates no folder or file and starts nothing. What a process does
with these values at start-up (the data folders, the generated secret key, Sentry) is in
``gallery.project.startup``, run by ``GalleryConfig.ready``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from gallery.logs import LOG_FORMATS, logging_config
from gallery.sites import registrable_domain, same_site

BASE_DIR = Path(__file__).resolve().parents[2]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    """Return the variable ``name`` stripped of surrounding blanks, or ``default`` if unset."""
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    """Return the variable ``name`` as a boolean (1/true/yes/on, 0/false/no/off/empty).

    Raises ``ImproperlyConfigured`` for anything else.
    """
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off), not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Return the variable ``name`` as an integer of at least ``minimum``.

    Raises ``ImproperlyConfigured`` if it is not an integer or is below ``minimum``.
    """
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_path(name: str, default: Path) -> Path:
    """Return the variable ``name`` as an absolute path (``~`` expanded), or ``default`` if unset or empty."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Return the comma-separated variable ``name`` as a list of non-empty, stripped items."""
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_port(name: str, default: str) -> str:
    """Return the variable ``name`` as a TCP port string, or ``""`` (meaning: no port).

    Raises ``ImproperlyConfigured`` unless it is empty or an integer in 1..65535.
    """
    value = env_str(name, default)
    if value and not (value.isdigit() and 1 <= int(value) <= 65535):
        raise ImproperlyConfigured(f"{name} must be a TCP port (1-65535) or empty, not {value!r}")
    return value


def env_url(name: str, default: str) -> str:
    """Return the variable ``name`` as an http(s) URL without a trailing slash.

    Raises ``ImproperlyConfigured`` if the scheme is not http/https or the host is missing.
    """
    value = env_str(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL such as https://glasshouse.example, not {value!r}")
    return value


def env_rate(name: str, default: str) -> str:
    """Return the variable ``name`` as a django-ratelimit rate: ``<count>/<period>``, the period
    an optional number and s, m, h or d (``"5/h"``, ``"100/10m"``).

    Raises ``ImproperlyConfigured`` for anything else.
    """
    value = env_str(name, default)
    if not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 5/h (count per s, m, h or d, e.g. 100/10m), not {value!r}"
        )
    return value


# --- Data folder --------------------------------------------------------------

DATA_DIR = env_path("GLASSHOUSE_DATA_DIR", BASE_DIR / "var")
BROKER_QUEUE_DIR = DATA_DIR / "broker" / "queue"
BROKER_PROCESSED_DIR = DATA_DIR / "broker" / "processed"
BROKER_CONTROL_DIR = DATA_DIR / "broker" / "control"
#: Where Django spools uploads while they arrive; on the data disk, not a small /tmp.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
STATIC_ROOT = DATA_DIR / "static"
# Each process creates these folders at start-up (gallery.project.startup.create_data_folders).

# --- Core ---------------------------------------------------------------------

#: Empty (unset): every process takes the key in ``<data>/secret_key`` at start-up, which the first
#: one to start creates (mode 0600; gallery.project.startup), so all processes sharing the data folder agree.
SECRET_KEY = env_str("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)

PORT = env_port("PORT", "8000")
CONTENT_DOMAIN = env_str("CONTENT_DOMAIN", "localhost").lower().strip(".")
if not CONTENT_DOMAIN:
    raise ImproperlyConfigured("CONTENT_DOMAIN must be a domain name such as glasshouse-content.example")
CONTENT_SCHEME = env_str("CONTENT_SCHEME", "http")
if CONTENT_SCHEME not in ("http", "https"):
    raise ImproperlyConfigured(f"CONTENT_SCHEME must be http or https, not {CONTENT_SCHEME!r}")
#: Port shown in gallery URLs; "" means none (standard port behind nginx).
CONTENT_PORT = env_port("CONTENT_PORT", PORT)
APP_URL = env_url("APP_URL", f"http://127.0.0.1:{PORT or '8000'}")
APP_HOSTS = env_list("APP_HOSTS")

ALLOWED_HOSTS = ["127.0.0.1", "localhost", f".{CONTENT_DOMAIN}", *APP_HOSTS]
_app_host = urlsplit(APP_URL).hostname
# A gallery must never be the same site as the app: a script in a gallery could otherwise set
# cookies for the app (Domain=<registrable domain>), clear them (Clear-Site-Data), and its
# requests to the app would count as same-site (SameSite=Lax cookies sent). Gallery ids are
# random labels; "x" stands for any of them.
for _host in filter(None, [_app_host, *APP_HOSTS]):
    if same_site(_host, f"x.{CONTENT_DOMAIN}"):
        raise ImproperlyConfigured(
            f"CONTENT_DOMAIN ({CONTENT_DOMAIN}) is on the same registrable domain "
            f"({registrable_domain(_host)}) as the app host {_host} (APP_URL or APP_HOSTS): galleries "
            "could read, set and clear the app's cookies. Serve galleries from a domain of their own, "
            "such as glasshouse-content.org beside glasshouse.org (README, 'Security model')."
        )
    # The content domain and its subdomains are answered by gallery.content, never by the app.
    _name = _host.lower().rstrip(".")
    if _name == CONTENT_DOMAIN or _name.endswith(f".{CONTENT_DOMAIN}"):
        raise ImproperlyConfigured(
            f"The app host {_host} (APP_URL or APP_HOSTS) is "
            + ("CONTENT_DOMAIN itself" if _name == CONTENT_DOMAIN else f"under CONTENT_DOMAIN ({CONTENT_DOMAIN})")
            + ", where only galleries are served: the app would answer 404 there. Serve the app from another "
            "host, such as 127.0.0.1 in development (the default APP_URL) or glasshouse.org beside "
            "glasshouse-content.org."
        )
if _app_host and _app_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_app_host)
CSRF_TRUSTED_ORIGINS = [APP_URL]

# App cookies (session, CSRF) are host-only: no Domain attribute, so no other host (a gallery
# least of all) ever receives them. SameSite=Lax; the session cookie is out of scripts' reach.
SESSION_COOKIE_DOMAIN = None
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True

if APP_URL.startswith("https://"):
    # Behind nginx, which terminates TLS and sets X-Forwarded-Proto (deploy/).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    #: A load balancer's health probe may speak plain HTTP to gunicorn.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    #: Seconds browsers keep to https for the app's host (HSTS); a year by default, 0 turns it off.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    #: Subdomains of the app's host too (galleries live on a domain of their own, CONTENT_DOMAIN).
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    #: Adds "preload" (consent to browsers' preload lists; submitting the domain is a separate step).
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Before allauth, so gallery/templates/allauth/ and account/ override its templates.
    "gallery.apps.GalleryConfig",
    "allauth",
    "allauth.account",
]

MIDDLEWARE = [
    # Before everything, gallery content origins included: every log line of a request names it.
    "gallery.logs.RequestIdMiddleware",
    # Then: requests for <gallery-id>.<CONTENT_DOMAIN> are answered here and never
    # reach the app's URLs, sessions, CSRF or X-Frame-Options (galleries are embeddable).
    "gallery.content.ContentOriginMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
]
X_FRAME_OPTIONS = "DENY"


def content_origins_source(scheme: str, domain: str, port: str) -> str:
    """The CSP source expression matching every gallery origin: ``<scheme>://*.<domain>[:<port>]``."""
    return f"{scheme}://*.{domain}" + (f":{port}" if port else "")


def app_csp(content_origins: str) -> dict[str, list[str]]:
    """The app origin's Content-Security-Policy (``SECURE_CSP``), given ``content_origins_source(...)``.

    Scripts and styles come from the app's own static files, or carry the request's nonce
    (``{{ csp_nonce }}``): no inline script, style element or attribute, or ``on*=`` handler runs
    without it. Images may come from gallery origins (share cards) and ``data:`` URLs (the
    admin's icons); frames only from gallery origins (the embed panel's preview). The app may not
    be framed at all, nor post forms or resolve relative URLs anywhere else.
    """
    return {
        "default-src": [CSP.SELF],
        "script-src": [CSP.SELF, CSP.NONCE],
        "style-src": [CSP.SELF, CSP.NONCE],
        "img-src": [CSP.SELF, "data:", content_origins],
        "frame-src": [content_origins],
        "connect-src": [CSP.SELF],
        "object-src": [CSP.NONE],
        "base-uri": [CSP.NONE],
        "form-action": [CSP.SELF],
        "frame-ancestors": [CSP.NONE],
    }


#: The app origin's policy; galleries are answered before this middleware (gallery.content).
SECURE_CSP = app_csp(content_origins_source(CONTENT_SCHEME, CONTENT_DOMAIN, CONTENT_PORT))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
#: A page the app opens in another window (a gallery, a preview) gets no handle on the app's window.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
#: Powerful browser features the app never uses, off for its pages and every frame in them
#: (django-permissions-policy). The clipboard stays: the embed panel's "Copy" buttons write to it.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    name: []
    for name in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

ROOT_URLCONF = "gallery.project.urls"
WSGI_APPLICATION = "gallery.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # {{ csp_nonce }}: the nonce of this response's Content-Security-Policy.
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

_database_url = env_str("DATABASE_URL", "")
try:
    _database = dj_database_url.parse(
        _database_url or f"sqlite:///{DATA_DIR / 'glasshouse.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {exc}") from exc
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker write the same file: wait for locks, take
    # the write lock up front, and let readers proceed during writes (WAL).
    _database["CONN_MAX_AGE"] = 0
    _database.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits) --------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    # Per process: good enough for one machine; production sets REDIS_URL.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery (producer side here; worker_shell reads the same settings) ----------

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_QUEUE_DIR),
        "data_folder_out": str(BROKER_QUEUE_DIR),
        "processed_folder": str(BROKER_PROCESSED_DIR),
        "store_processed": False,
        # Exchange tables; kombu's default is "control" relative to the working directory.
        "control_folder": str(BROKER_CONTROL_DIR),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
#: Sending a build while the broker is down fails within seconds instead of holding the upload
#: request: the build stays queued and the sweeper sends it later (``gallery.sweeper``).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
#: Celery beat's state file (last run times of periodic tasks), in the data folder.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- View counts (gallery.view_counts) --------------------------------------------

#: Seconds between two flushes of the gallery views counted in Redis into ``Gallery.view_count``
#: (Celery beat's ``flush-view-counts``); without ``REDIS_URL``, each web process writes its own
#: counts at most this long after a view. "My galleries" lags the page loads by up to this long.
VIEW_COUNT_FLUSH_INTERVAL = env_int("VIEW_COUNT_FLUSH_INTERVAL", 60, minimum=1)

# --- Storage (see gallery.storage.get_storage) -----------------------------------

S3_BUCKET = env_str("S3_BUCKET", "")
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "")
S3_REGION = env_str("S3_REGION", "")
#: Seconds one S3 request may take to connect, and to answer, before it counts as a fault.
S3_TIMEOUT = env_int("S3_TIMEOUT", 30, minimum=1)
#: Seconds a storage operation keeps retrying S3 faults (endpoint down, 5xx, throttling, timeouts)
#: with backoff before it gives up (``builder.storage.S3Storage``); 0: no retries.
STORAGE_RETRY_BUDGET = env_int("STORAGE_RETRY_BUDGET", 60, minimum=0)
LOCAL_STORAGE_ROOT = DATA_DIR / "storage"
#: Path prefix of nginx's internal location that serves storage keys (deploy/nginx/content.conf),
#: e.g. ``/_s3/``. When set, the content origin answers a GET of a store file (``/_runtime/``,
#: ``/_wheels/``, ``/_build/``, a build's static files, ``/sw.js``) with ``X-Accel-Redirect:
#: <prefix><key>`` and no body, and nginx fetches the bytes from S3; empty (the default, ``make
#: run``): Django streams them itself.
CONTENT_ACCEL_REDIRECT = env_str("CONTENT_ACCEL_REDIRECT", "")
if CONTENT_ACCEL_REDIRECT and not re.fullmatch(r"/(?:[A-Za-z0-9_.-]+/)+", CONTENT_ACCEL_REDIRECT):
    raise ImproperlyConfigured(
        "CONTENT_ACCEL_REDIRECT must be a path that starts and ends with / (the internal location "
        f"of deploy/nginx/content.conf, /_s3/), or empty; not {CONTENT_ACCEL_REDIRECT!r}"
    )

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
#: Form fields other than files; the file itself is not counted by this limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
#: 0: every uploaded file is spooled to FILE_UPLOAD_TEMP_DIR, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_PERMISSIONS = 0o600
#: The only upload handler: spools one file per request and stops at UPLOAD_MAX_BYTES while the
#: body arrives, removing the partial file (gallery.uploads).
FILE_UPLOAD_HANDLERS = ["gallery.uploads.CappedUploadHandler"]
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

# --- Builds ---------------------------------------------------------------------

#: Seconds a build may run: at the soft limit it stops and fails cleanly; at the hard limit the
#: worker process running it is killed and the build fails (``worker_shell.tasks.BuildRequest``).
BUILD_SOFT_TIME_LIMIT = env_int("BUILD_SOFT_TIME_LIMIT", 600, minimum=1)
BUILD_HARD_TIME_LIMIT = env_int("BUILD_HARD_TIME_LIMIT", 720, minimum=1)
#: Retries of a build after a package-index (PyPI) fault, and the first backoff (s, doubling).
BUILD_MAX_RETRIES = env_int("BUILD_MAX_RETRIES", 3, minimum=0)
BUILD_RETRY_BACKOFF = env_int("BUILD_RETRY_BACKOFF", 5, minimum=1)
#: Times a worker may start one build: a build whose worker is lost (killed, out of memory) is
#: started again until then, and fails with the reason after that.
BUILD_MAX_ATTEMPTS = env_int("BUILD_MAX_ATTEMPTS", 3, minimum=1)
#: Seconds between two runs of the build sweeper (``gallery.sweeper``, run by Celery beat).
BUILD_SWEEP_INTERVAL = env_int("BUILD_SWEEP_INTERVAL", 60, minimum=1)
#: Seconds a build may stay queued after it was sent before the sweeper sends it again (the
#: broker may have lost the message); a build that never reached the broker is sent at the next sweep.
BUILD_QUEUED_GRACE = env_int("BUILD_QUEUED_GRACE", 600, minimum=1)
#: Seconds past the hard time limit after which the sweeper treats a running build as lost
#: (its whole worker died): it starts it again, or fails it once ``BUILD_MAX_ATTEMPTS`` are used.
BUILD_RUNNING_GRACE = env_int("BUILD_RUNNING_GRACE", 120, minimum=1)
if BUILD_HARD_TIME_LIMIT <= BUILD_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"BUILD_HARD_TIME_LIMIT ({BUILD_HARD_TIME_LIMIT}) must be greater than "
        f"BUILD_SOFT_TIME_LIMIT ({BUILD_SOFT_TIME_LIMIT})"
    )
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis hands an unacknowledged message to another worker after this many seconds:
        # longer than any build may run, so only the builds of a worker that died come again.
        "visibility_timeout": BUILD_HARD_TIME_LIMIT + BUILD_RUNNING_GRACE,
        # A broker that is down is reported within seconds (enqueue, sweeper).
        "socket_connect_timeout": 5,
    }
PYODIDE_VERSION = "314.0.7"
PYODIDE_RUNTIME_DIR = env_path("PYODIDE_RUNTIME_DIR", DATA_DIR / "runtime" / f"pyodide-{PYODIDE_VERSION}")
WHEEL_CACHE_DIR = env_path("WHEEL_CACHE_DIR", DATA_DIR / "cache" / "wheels")
GALLERY_AUTO_APPROVE = env_bool("GALLERY_AUTO_APPROVE", False)

# --- Build upkeep: temporary files, Node's heap, old builds (worker_shell.tempfiles, gallery.garbage) ---

#: Cap of Node's V8 heap in the build's compatibility check (``--max-old-space-size``, MB).
#: The database and Pyodide's wasm memory live outside that heap (ArrayBuffers), so it does not
#: grow with the upload: the check passed with 32 MB for 1 MB and 100 MB databases alike (also
#: 100 rows of 1 MB each; 16 MB runs out), while Node's own default here is about 4 GB. 256 MB
#: is 8 times what the 100 MB upload limit needs, room for plugins and wide pages, and a
#: runaway check fails with "ran out of memory in the compatibility check" instead of the machine.
BUILD_NODE_MAX_OLD_SPACE_MB = env_int("BUILD_NODE_MAX_OLD_SPACE_MB", 256, minimum=8)
#: Builds per gallery whose files garbage collection keeps (the newest; the live build and a
#: build waiting for review are kept whatever their age). See ``gallery.garbage``.
BUILDS_KEPT_PER_GALLERY = env_int("BUILDS_KEPT_PER_GALLERY", 5, minimum=1)

# --- The build's database check (builder.sqlite_check; issue 9, "Hostile or broken uploads") ---

#: Wall-clock seconds the check and canonical copy of one upload may take (the checker's child
#: process gets as many CPU seconds); then it is killed and the build fails with the reason. The
#: build's own soft time limit still applies (the child is killed with the build).
#: Checking and copying a 190 MB database (1.5 million rows, two indexes) took 1.6 s on these machines.
DATABASE_CHECK_SECONDS = env_int("DATABASE_CHECK_SECONDS", 300, minimum=1)
#: Address space of the checker's child process (``RLIMIT_AS``, MB). SQLite streams the file
#: through a small page cache, so this does not grow with the upload; it stops a hostile schema.
DATABASE_CHECK_MEMORY_MB = env_int("DATABASE_CHECK_MEMORY_MB", 512, minimum=64)
#: Tables and views a database may have together (full-text shadow tables included).
DATABASE_MAX_TABLES = env_int("DATABASE_MAX_TABLES", 1000, minimum=1)
#: Columns one table may have (SQLite's own maximum is 2000).
DATABASE_MAX_COLUMNS = env_int("DATABASE_MAX_COLUMNS", 1000, minimum=1)
#: Bytes of SQL in the schema (every CREATE statement together).
DATABASE_MAX_SCHEMA_BYTES = env_int("DATABASE_MAX_SCHEMA_BYTES", 2 * 1024 * 1024, minimum=1024)

# --- Previews (gallery.preview) ----------------------------------------------------

#: Seconds a preview link (``gallery.preview.preview_url``) stays valid, at least (rounded up
#: to the next hour). A day: the queue and "My galleries" mint a fresh link on every page view,
#: so a link only has to outlast one review, and anyone holding it sees the unmoderated
#: gallery until it expires (a forwarded link, browser history, a Referer header).
PREVIEW_LIFETIME = env_int("PREVIEW_LIFETIME", 24 * 3600, minimum=60)

# --- Reports from readers (gallery.views.gallery_report, services.record_report) ----

#: django-ratelimit rate for report submissions per client IP, e.g. "5/h".
REPORT_RATE_LIMIT = env_rate("REPORT_RATE_LIMIT", "5/h")
#: Distinct reporters after whose reports an approved gallery is taken down for review; 0: never.
REPORTS_TAKEDOWN_THRESHOLD = env_int("REPORTS_TAKEDOWN_THRESHOLD", 3, minimum=0)

# --- Self-host downloads (/_download/<build-id>.zip on a content origin, gallery.content) ----

#: django-ratelimit rate for self-host zips served per client IP (IPv6: per /64), e.g. "30/h".
DOWNLOAD_RATE_LIMIT = env_rate("DOWNLOAD_RATE_LIMIT", "30/h")

# --- Static files (admin CSS), served by WhiteNoise under gunicorn ----------------

STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# A bare checkout serves the admin's CSS without `collectstatic`.
WHITENOISE_USE_FINDERS = True

# --- Misc -----------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Accounts (django-allauth) and email ------------------------------------------

AUTHENTICATION_BACKENDS = [
    # The admin's username login (operators, moderators).
    "django.contrib.auth.backends.ModelBackend",
    # Publishers log in by email.
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "gallery:mine"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
#: No login before the address is confirmed through the link allauth emails.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
#: Following the link in the browser that signed up logs in there (and claims the galleries
#: uploaded anonymously in that browser, gallery.publisher.claim_session_galleries).
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Glasshouse] "
ACCOUNT_LOGOUT_REDIRECT_URL = "gallery:index"
#: Links in account emails (verification, password reset) use the scheme of APP_URL.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = urlsplit(APP_URL).scheme

#: With EMAIL_HOST set, mail goes out by SMTP; without it, to the console (development).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "gallery.mail.ReadableConsoleBackend"  # links stay whole (no quoted-printable wrapping)
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
#: STARTTLS on EMAIL_PORT (587); set EMAIL_USE_SSL instead for implicit TLS (465).
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set only one of them to true")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Glasshouse <noreply@{_app_host or 'localhost'}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}")

#: ``text`` (default) or ``json``: one JSON object per log line, for a log collector (gallery.logs).
LOG_FORMAT = env_str("LOG_FORMAT", "text").lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
#: The Celery worker's own handlers (it configures the root logger itself): each line names the
#: build it belongs to (``-`` outside a build; ``worker_shell.celery`` adds the filter).
CELERY_WORKER_LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] build_id=%(build_id)s %(message)s"
CELERY_WORKER_TASK_LOG_FORMAT = (
    "[%(asctime)s: %(levelname)s/%(processName)s] build_id=%(build_id)s %(task_name)s[%(task_id)s]: %(message)s"
)

# --- Operations: health check, error reporting ---------------------------------------

#: Seconds each part of ``/healthz`` (database, broker, storage) may take before it counts as down.
HEALTH_CHECK_TIMEOUT = env_int("HEALTH_CHECK_TIMEOUT", 3, minimum=1)

#: Errors (uncaught exceptions in views and tasks, ``logger.error`` lines) go to Sentry when set;
#: no personal data (``send_default_pii`` off), no performance tracing unless a rate is set.
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "production")
SENTRY_TRACES_SAMPLE_RATE = env_str("SENTRY_TRACES_SAMPLE_RATE", "0")
try:
    _traces_rate = float(SENTRY_TRACES_SAMPLE_RATE)
except ValueError:
    _traces_rate = -1.0
if not 0.0 <= _traces_rate <= 1.0:
    raise ImproperlyConfigured(
        f"SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1, not {SENTRY_TRACES_SAMPLE_RATE!r}"
    )
if SENTRY_DSN:
    # Checked here, as every variable; sentry-sdk starts at start-up (gallery.project.startup).
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(SENTRY_DSN)
    except BadDsn as exc:
        raise ImproperlyConfigured(
            f"SENTRY_DSN must be a Sentry DSN such as https://<key>@<host>/<project>, not {SENTRY_DSN!r} ({exc})"
        ) from None
