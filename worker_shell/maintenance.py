"""Periodic upkeep of storage, run by Celery beat (``worker_shell.celery``'s ``beat_schedule``).

``collect_garbage`` runs ``gallery.garbage.collect_garbage`` once a day (04:17 UTC): superseded builds'
files, orphaned uploads, and runtime files and wheels no build refers to. It is idempotent and
safe when several beats or workers run it at once; ``manage.py collect_garbage`` does the same
by hand (``--dry-run`` lists without removing).
"""

from __future__ import annotations

from gallery import garbage
from worker_shell.celery import app


@app.task(name="worker_shell.maintenance.collect_garbage", ignore_result=True)
def collect_garbage() -> dict[str, list[str]]:
    """Collect storage garbage (``gallery.garbage.collect_garbage``); return what went, by kind.

    Shape: ``{"builds": [build id], "uploads": [folder], "shared": [folder], "failed": [what
    storage refused]}``. Storage faults are logged and retried at the next run, never raised.
    """
    collected = garbage.collect_garbage()
    return {
        "builds": collected.builds,
        "uploads": collected.uploads,
        "shared": collected.shared,
        "failed": collected.failed,
    }
