"""The Celery app of the build worker, configured from Django settings (namespace ``CELERY``).

Start a worker with ``celery -A worker_shell.celery:app worker``. The broker is
``REDIS_URL`` when set, else the embedded filesystem transport (see
``gallery.settings``).
"""

from __future__ import annotations

import os

import django
from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
# Tasks load rows by primary key, so the ORM must be ready before they are imported.
django.setup()

app = Celery("glasshouse", include=["worker_shell.tasks", "worker_shell.maintenance"])
app.config_from_object("django.conf:settings", namespace="CELERY")

# Celery beat's periodic tasks (``celery -A worker_shell.celery:app beat``).
app.conf.beat_schedule = {
    "collect-garbage": {"task": "worker_shell.maintenance.collect_garbage", "schedule": crontab(hour=4, minute=17)},
}
