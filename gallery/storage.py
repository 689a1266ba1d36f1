"""The one bundle store of this process, built from settings.

``get_storage()`` returns a ``builder.storage.S3Storage`` when ``S3_BUCKET`` is set
(retrying faults for ``STORAGE_RETRY_BUDGET`` seconds, each request bounded by ``S3_TIMEOUT``),
else a ``builder.storage.LocalStorage`` rooted at ``LOCAL_STORAGE_ROOT``
(``<data>/storage``). The instance is cached per process; it is rebuilt when a
storage setting changes (``setting_changed``, sent by Django's test tools).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from builder.storage import LocalStorage, S3Storage, Storage

#: Settings that decide which store ``get_storage`` builds.
STORAGE_SETTINGS = frozenset(
    {"S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION", "S3_TIMEOUT", "STORAGE_RETRY_BUDGET", "LOCAL_STORAGE_ROOT"}
)

_lock = threading.Lock()
_storage: Storage | None = None


def get_storage() -> Storage:
    """Return this process's store (cached). boto3 errors surface later as ``StorageError``."""
    global _storage
    if _storage is None:
        with _lock:
            if _storage is None:
                _storage = _from_settings()
    return _storage


def reset_storage() -> None:
    """Forget the cached store; the next ``get_storage()`` builds it from settings again."""
    global _storage
    with _lock:
        _storage = None


def _from_settings() -> Storage:
    if settings.S3_BUCKET:
        return S3Storage(
            settings.S3_BUCKET,
            endpoint_url=settings.S3_ENDPOINT_URL or None,
            region=settings.S3_REGION or None,
            retry_budget=settings.STORAGE_RETRY_BUDGET,
            timeout=settings.S3_TIMEOUT,
        )
    return LocalStorage(settings.LOCAL_STORAGE_ROOT)


@receiver(setting_changed)
def _storage_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in STORAGE_SETTINGS:
        reset_storage()
