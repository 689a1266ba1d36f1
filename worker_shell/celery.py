"""The Celery app of the build worker, configured from Django settings (namespace ``CELERY``).

Start a worker with ``celery -A worker_shell.celery:app worker`` and, on one or more
machines, the scheduler of periodic tasks (the build sweeper) with
``celery -A worker_shell.celery:app beat``. The broker is
``REDIS_URL`` when set, else the embedded filesystem transport (see
``gallery.settings``).
"""

from __future__ import annotations

import os

import django
from celery import Celery
from celery.schedules import crontab
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
# Tasks load rows by primary key, so the ORM must be ready before they are imported.
django.setup()

app = Celery("glasshouse", include=["worker_shell.tasks", "worker_shell.maintenance"])
app.config_from_object("django.conf:settings", namespace="CELERY")

# Periodic tasks, run by `celery beat` (deploy/Procfile's `beat:`, glasshouse-beat.service.example).
# `expires`: a run that waited longer than its interval in the queue (no worker) is dropped, not piled up.
# Other periodic tasks: one entry each, at the end.
app.conf.beat_schedule = {
    "sweep-builds": {
        "task": "worker_shell.tasks.sweep_builds",
        "schedule": settings.BUILD_SWEEP_INTERVAL,
        "options": {"expires": settings.BUILD_SWEEP_INTERVAL},
    },
    "collect-garbage": {"task": "worker_shell.maintenance.collect_garbage", "schedule": crontab(hour=4, minute=17)},
}
