"""The servers Glasshouse talks to: the database, the cache, the Celery broker and the bundle
store. A bare checkout uses embedded ones (SQLite, per-process memory, a broker in the data
folder, a local folder); production names real ones (``DATABASE_URL``, ``REDIS_URL``,
``S3_BUCKET``; DESIGN.md, "Configuration")."""

from __future__ import annotations

import re

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gallery.project.env import env_int, env_str
from gallery.project.settings.builds import BUILD_HARD_TIME_LIMIT, BUILD_RUNNING_GRACE
from gallery.project.settings.core import BROKER_CONTROL_DIR, BROKER_PROCESSED_DIR, BROKER_QUEUE_DIR, DATA_DIR

# --- Database -----------------------------------------------------------------

_database_url = env_str("DATABASE_URL", "")
try:
    _database = dj_database_url.parse(
        _database_url or f"sqlite:///{DATA_DIR / 'glasshouse.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
except ValueError as _exc:
    raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {_exc}") from _exc
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

CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object]
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis hands an unacknowledged message to another worker after this many seconds:
        # longer than any build may run, so only the builds of a worker that died come again.
        "visibility_timeout": BUILD_HARD_TIME_LIMIT + BUILD_RUNNING_GRACE,
        # A broker that is down is reported within seconds (enqueue, sweeper).
        "socket_connect_timeout": 5,
    }
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
#: request: the build stays queued and the sweeper sends it later (``worker_shell.tasks.sweep_builds``).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
#: Celery beat's state file (last run times of periodic tasks), in the data folder.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

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
