"""What a process does once at start-up, after the settings are read: create the data folders,
take the generated secret key, start error reporting.

The settings only read the environment (``gallery.project.settings``); these act on it. They run
from ``GalleryConfig.ready`` (``gallery.apps``), because every process of Glasshouse calls
``django.setup()`` before it does any work: gunicorn through ``gallery.project.wsgi``, the Celery
worker and beat through ``worker_shell.celery``, ``manage.py`` (``migrate`` first of all) through
``execute_from_command_line``, the tests through pytest-django. Nothing before ``ready`` needs
the key or the folders: ``django.setup()`` configures logging (to the console) and imports the
apps' modules, none of which signs anything, connects to the database or the broker, or writes
a file at import.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gallery.logs import redact_sentry_event


def prepare_process() -> None:
    """Create the data folders, fill an empty ``SECRET_KEY`` from the key file, start Sentry if set.

    Raises ``ImproperlyConfigured`` if the key file exists but is empty.
    """
    create_data_folders()
    if not _secret_key_is_set():
        settings.SECRET_KEY = generated_secret_key(Path(settings.DATA_DIR))
    start_error_reporting()


def create_data_folders() -> None:
    """Create the data folder and the folders in it that other programs expect to exist.

    The filesystem broker's queue, processed and control folders (kombu writes into them but
    does not create them), the upload spool (``FILE_UPLOAD_TEMP_DIR``: Django's upload handler
    and the build's temporary folders write there) and ``STATIC_ROOT`` (WhiteNoise warns about a
    missing one; ``collectstatic`` fills it). Created whichever broker is configured, so
    switching ``REDIS_URL`` off needs no set-up step. Existing folders are left as they are.
    """
    for folder in (
        settings.DATA_DIR,
        settings.BROKER_QUEUE_DIR,
        settings.BROKER_PROCESSED_DIR,
        settings.BROKER_CONTROL_DIR,
        settings.FILE_UPLOAD_TEMP_DIR,
        settings.STATIC_ROOT,
    ):
        Path(folder).mkdir(parents=True, exist_ok=True)


def _secret_key_is_set() -> bool:
    """Whether ``SECRET_KEY`` has a value (the ``SECRET_KEY`` variable, or set by a test or a caller)."""
    try:
        # Django raises on reading an empty SECRET_KEY rather than returning it.
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:
        return False


def generated_secret_key(data_dir: Path) -> str:
    """Return the key in ``<data_dir>/secret_key``, creating the file (mode 0600) with a new key if missing.

    Every process using the same data folder gets the same key, so sessions, CSRF tokens and
    preview links made by one are valid in the others. Raises ``ImproperlyConfigured`` if the
    file exists but is empty.
    """
    path = data_dir / "secret_key"
    try:
        # O_EXCL: when several processes start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if not key:
            raise ImproperlyConfigured(f"{path} is empty: delete it to generate a new SECRET_KEY") from None
        return key
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def start_error_reporting() -> None:
    """Start sentry-sdk when ``SENTRY_DSN`` is set (the settings checked the DSN and the traces rate).

    The Django, Celery and logging integrations are enabled by themselves when installed: views,
    tasks and ``logger.error`` lines of this process report from here on.
    """
    if not settings.SENTRY_DSN:
        return
    import sentry_sdk  # only a process that reports pays for importing it
    from sentry_sdk.scrubber import EventScrubber

    sentry_sdk.init(
        dsn=settings.SENTRY_DSN,
        environment=settings.SENTRY_ENVIRONMENT,
        traces_sample_rate=float(settings.SENTRY_TRACES_SAMPLE_RATE),
        send_default_pii=False,
        # Local variables named like secrets ("token", "session", ...) are scrubbed at any depth
        # (a view's kwargs hold a management link's token); URLs, messages and breadcrumbs get
        # management-link tokens redacted, as in the logs.
        event_scrubber=EventScrubber(recursive=True),
        before_send=redact_sentry_event,
        before_send_transaction=redact_sentry_event,
        before_breadcrumb=redact_sentry_event,
    )
