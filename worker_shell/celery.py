"""The Celery app of the build worker, configured from Django settings (namespace ``CELERY``).

Start a worker with ``celery -A worker_shell.celery:app worker`` and, on one or more
machines, the scheduler of periodic tasks (the build sweeper, garbage collection, the flush of
gallery view counts) with
``celery -A worker_shell.celery:app beat``. The broker is
``REDIS_URL`` when set, else the embedded filesystem transport (see
``gallery.project.settings``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import django
from celery import Celery, signals
from celery.schedules import crontab
from django.conf import settings

from gallery.logs import build_id_var, use_context_on
from gallery.services.queue import BUILD_TASK

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.project.settings")
# Tasks load rows by primary key, so the ORM must be ready before they are imported.
django.setup()

logger = logging.getLogger(__name__)

app = Celery("glasshouse", include=["worker_shell.tasks", "worker_shell.maintenance"])
app.config_from_object("django.conf:settings", namespace="CELERY")

# Periodic tasks, run by `celery beat` (deploy/Procfile's `beat:`, deploy/systemd/glasshouse-beat.service).
# `expires`: a run that waited longer than its interval in the queue (no worker) is dropped, not piled up.
# Other periodic tasks: one entry each, at the end.
app.conf.beat_schedule = {
    "sweep-builds": {
        "task": "worker_shell.tasks.sweep_builds",
        "schedule": settings.BUILD_SWEEP_INTERVAL,
        "options": {"expires": settings.BUILD_SWEEP_INTERVAL},
    },
    "collect-garbage": {"task": "worker_shell.maintenance.collect_garbage", "schedule": crontab(hour=4, minute=17)},
    "flush-view-counts": {
        "task": "worker_shell.maintenance.flush_view_counts",
        "schedule": settings.VIEW_COUNT_FLUSH_INTERVAL,
        "options": {"expires": settings.VIEW_COUNT_FLUSH_INTERVAL},
    },
}


# --- Log lines name their build (gallery.logs) ---------------------------------------------
@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_build_ids(logger: Any, **kwargs: Any) -> None:
    """Give the handlers Celery set up the filter that fills ``%(build_id)s`` (and JSON lines if asked)."""
    use_context_on(logger, settings.LOG_FORMAT)


@signals.task_prerun.connect
def _enter_build(task: Any, task_id: str, args: Any = None, **kwargs: Any) -> None:
    """While a build task runs, every log line of this process names its build."""
    if task.name == BUILD_TASK and args:
        build_id_var.set(str(args[0]))
        logger.info("build started (task %s, delivery %d)", task_id, (task.request.retries or 0) + 1)


@signals.task_postrun.connect
def _leave_build(task: Any, retval: Any = None, state: str | None = None, **kwargs: Any) -> None:
    """After any task (finished, failed or retrying), lines name no build again."""
    if build_id_var.get() is not None:
        logger.info("build task ended: %s (%s)", retval if isinstance(retval, str) else type(retval).__name__, state)
    build_id_var.set(None)
