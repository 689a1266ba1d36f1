"""Health of the services a web process needs: the database, the broker and the bundle store.

``check_all()`` runs each check with a time limit (``HEALTH_CHECK_TIMEOUT`` seconds) and says
which are up; ``gallery.views.public.healthz`` answers it as JSON for load balancers and monitors.
A check never retries: a health probe must report a fault, not ride it out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

from builder.storage import S3Storage, Storage
from gallery.storage import get_storage

logger = logging.getLogger(__name__)

#: Key prefix listed by the storage check: nothing is stored there, so the listing is cheap.
PROBE_PREFIX = "_healthz/"


def check_database() -> None:
    """Run ``SELECT 1`` on the default database. Raises the driver's error when it is down."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    """Ping Redis (``REDIS_URL``), or open the embedded filesystem broker's folders.

    Raises ``redis.RedisError`` (or ``OSError``) when the broker cannot be reached within
    ``HEALTH_CHECK_TIMEOUT`` seconds.
    """
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        timeout = settings.HEALTH_CHECK_TIMEOUT
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return
    from kombu import Connection

    with Connection(url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT)


_probe: tuple[Storage, Storage] | None = None


def _probe_store() -> Storage:
    """The configured store; for S3, a client of the same bucket without retries and with the
    health check's timeout (built once per configured store)."""
    global _probe
    store = get_storage()
    if not isinstance(store, S3Storage):
        return store
    if _probe is None or _probe[0] is not store:
        probe = S3Storage(
            settings.S3_BUCKET,
            endpoint_url=settings.S3_ENDPOINT_URL or None,
            region=settings.S3_REGION or None,
            retry_budget=0,
            timeout=settings.HEALTH_CHECK_TIMEOUT,
        )
        _probe = (store, probe)
    return _probe[1]


def check_storage() -> None:
    """List keys under ``_healthz/`` in the bundle store (an S3 ListObjectsV2 on the bucket).

    Raises ``builder.storage.StorageError`` when the store cannot be reached, the bucket is
    missing or the credentials are refused.
    """
    next(iter(_probe_store().keys(PROBE_PREFIX)), None)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
}


def check_all() -> dict[str, dict[str, object]]:
    """Run every check; return ``{name: {"ok": bool, "ms": int, "error": str (only when not ok)}}``.

    ``ms`` is the check's duration in milliseconds. ``error`` is the exception's class name only:
    the answer is public, and messages name internal hosts and ports. The whole message goes to
    the log (warning). Nothing is raised.
    """
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; the probe must answer regardless
            logger.warning("health check %s failed: %s", name, exc)
            results[name] = {"ok": False, "ms": _ms_since(started), "error": type(exc).__name__}
        else:
            results[name] = {"ok": True, "ms": _ms_since(started)}
    return results


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
