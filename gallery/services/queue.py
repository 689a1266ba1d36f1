"""Send tasks to the worker by name; producer only. Imports no model: the worker's Celery app
reads the task names from here before Django is set up.

The worker's Celery app lives in ``worker_shell`` and reads the same ``CELERY_*``
settings. ``gallery`` never imports ``worker_shell`` (DESIGN.md, imports flow one
way), so it sends the task by name.
"""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError

#: Name of the build task defined in ``worker_shell.tasks``.
BUILD_TASK = "worker_shell.tasks.build_gallery"
#: Name of the task that stores the self-host zip of a build made before builds wrote one.
DOWNLOAD_TASK = "worker_shell.tasks.store_download"
#: What ``send_build`` raises when the broker cannot be reached (kombu wraps connection errors).
BROKER_ERRORS = (OperationalError, OSError)


def make_app() -> Celery:
    """A producer-only Celery app configured from the ``CELERY_*`` settings as they are now."""
    producer = Celery("glasshouse", set_as_current=False)
    producer.config_from_object("django.conf:settings", namespace="CELERY")
    return producer


app = make_app()


def send_build(build_id: str) -> None:
    """Enqueue the build ``build_id`` (a ``Build`` primary key).

    Call it after the transaction that created the row commits
    (``transaction.on_commit``). Raises one of ``BROKER_ERRORS`` if the broker cannot be
    reached within ``CELERY_TASK_PUBLISH_RETRY_POLICY``.
    """
    app.send_task(BUILD_TASK, args=[build_id])


def send_download(build_id: str) -> None:
    """Enqueue making the self-host zip of ready build ``build_id`` (``worker_shell.tasks.store_download``).

    Raises one of ``BROKER_ERRORS`` if the broker cannot be reached within
    ``CELERY_TASK_PUBLISH_RETRY_POLICY``.
    """
    app.send_task(DOWNLOAD_TASK, args=[build_id])


