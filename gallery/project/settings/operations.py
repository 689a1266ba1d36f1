"""Operations: log lines, the health check, error reporting (Sentry)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from gallery.logs import LOG_FORMATS, logging_config
from gallery.project.env import env_int, env_str

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
    except BadDsn as _exc:
        raise ImproperlyConfigured(
            f"SENTRY_DSN must be a Sentry DSN such as https://<key>@<host>/<project>, not {SENTRY_DSN!r} ({_exc})"
        ) from None
