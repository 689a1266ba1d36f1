"""Periodic upkeep, run by Celery beat (``worker_shell.celery``'s ``beat_schedule``).

``collect_garbage`` runs ``gallery.services.garbage.collect_garbage`` once a day (04:17 UTC): superseded builds'
files, orphaned uploads, and runtime files and wheels no build refers to. It is idempotent and
safe when several beats or workers run it at once; ``manage.py collect_garbage`` does the same
by hand (``--dry-run`` lists without removing).

``flush_view_counts`` runs ``gallery.view_counts.flush_view_counts`` every
``VIEW_COUNT_FLUSH_INTERVAL`` seconds: the gallery views counted in Redis go into
``Gallery.view_count``. Several at once claim disjoint counts, so that is safe too.
"""

from __future__ import annotations

from gallery import view_counts
from gallery.services import garbage
from worker_shell.celery import app


@app.task(name="worker_shell.maintenance.collect_garbage", ignore_result=True)
def collect_garbage() -> dict[str, list[str]]:
    """Collect storage garbage (``gallery.services.garbage.collect_garbage``); return what went, by kind.

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


# acks_late=False: a flush that dies is not delivered again; its claimed counts are adopted by
# a later flush (gallery.view_counts), which beat sends within the interval anyway.
@app.task(name="worker_shell.maintenance.flush_view_counts", acks_late=False, time_limit=view_counts.FLUSH_TIME_LIMIT)
def flush_view_counts() -> dict[str, int]:
    """Add the views counted in Redis to ``Gallery.view_count`` (``gallery.view_counts.flush_view_counts``).

    Shape: ``{"galleries": rows updated, "views": views added, "skipped": views of galleries
    deleted meanwhile}``. A database or Redis fault is raised (the task fails and says so in
    the worker's log); the counts stay in Redis for the next run. Without ``REDIS_URL`` each
    web process writes its own counts, and this finds nothing (all zeros).
    """
    result = view_counts.flush_view_counts()
    return {"galleries": result.galleries, "views": result.views, "skipped": result.skipped}
