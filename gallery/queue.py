"""Enqueue builds by task name; producer only.

The worker's Celery app lives in ``worker_shell`` and reads the same ``CELERY_*``
settings. ``gallery`` never imports ``worker_shell`` (DESIGN.md, imports flow one
way), so it sends the task by name.
"""

from __future__ import annotations

from celery import Celery

#: Name of the build task defined in ``worker_shell.tasks``.
BUILD_TASK = "worker_shell.tasks.build_gallery"

app = Celery("glasshouse", set_as_current=False)
app.config_from_object("django.conf:settings", namespace="CELERY")


def send_build(build_id: str) -> None:
    """Enqueue the build ``build_id`` (a ``Build`` primary key).

    Call it after the transaction that created the row commits
    (``transaction.on_commit``). Raises kombu's connection errors if the broker
    cannot be reached.
    """
    app.send_task(BUILD_TASK, args=[build_id])
