"""``worker_shell.maintenance``: garbage collection (daily) and the flush of view counts (every
``VIEW_COUNT_FLUSH_INTERVAL`` seconds) as Celery beat tasks, run by a real worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from celery.schedules import crontab
from django.conf import settings

from gallery import view_counts
from gallery.models import Build, BuildState, Gallery
from gallery.storage import get_storage
from tests.support.fresh_process import run_python
from worker_shell.celery import app

TASK = "worker_shell.maintenance.collect_garbage"
FLUSH_TASK = "worker_shell.maintenance.flush_view_counts"


def test_beat_sends_garbage_collection_once_a_day() -> None:
    entries = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == TASK]
    assert len(entries) == 1
    schedule = entries[0]["schedule"]
    assert isinstance(schedule, crontab)
    assert len(schedule.hour) == 1 and len(schedule.minute) == 1 and len(schedule.day_of_month) == 31


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_garbage_collection_sent_by_name(celery_worker_factory, glasshouse_data_dir: Path) -> None:
    worker = celery_worker_factory(env={"BUILDS_KEPT_PER_GALLERY": "1"})
    gallery = Gallery.objects.create(title="Ferns", database_name="ferns")
    storage = get_storage()
    builds = []
    for _ in range(2):
        build = Build.objects.create(gallery=gallery, state=BuildState.READY, source_sha256="0" * 64, source_bytes=1)
        build.source_key = f"uploads/{build.id}/source.db"
        build.save(update_fields=["source_key"])
        storage.put_bytes(build.source_key, b"SQLite format 3\x00")
        storage.put_bytes(f"builds/{build.id}/index.html", b"<!doctype html>")
        builds.append(build)
    Gallery.objects.filter(pk=gallery.pk).update(live_build=builds[-1])

    app.send_task(TASK)
    worker.wait_for_log(rf"Task {TASK}\[.*\] succeeded in .*'builds': \['{builds[0].id}'\]", timeout=60)

    time.sleep(0.2)
    builds[0].refresh_from_db()
    assert builds[0].files_deleted
    assert not storage.exists(f"builds/{builds[0].id}/index.html")
    assert storage.exists(f"builds/{builds[1].id}/index.html")


def test_beat_sends_the_flush_of_view_counts_every_interval_to_a_task_the_worker_loads(tmp_path: Path) -> None:
    entries = [entry for entry in app.conf.beat_schedule.values() if entry["task"] == FLUSH_TASK]
    assert entries == [
        {
            "task": FLUSH_TASK,
            "schedule": settings.VIEW_COUNT_FLUSH_INTERVAL,
            "options": {"expires": settings.VIEW_COUNT_FLUSH_INTERVAL},
        }
    ]
    app.loader.import_default_modules()  # what a worker imports at start: the app's `include`
    assert FLUSH_TASK in app.tasks
    show = "from worker_shell.celery import app; e = app.conf.beat_schedule['flush-view-counts']; "
    show += "print(e['schedule'], e['options']['expires'])"
    shown = run_python(tmp_path, ["-c", show], VIEW_COUNT_FLUSH_INTERVAL="15")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["15", "15"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_beat_flushes_the_views_counted_in_redis(celery_worker_factory) -> None:
    gallery = Gallery.objects.create(title="Ferns", database_name="ferns", moderation_state="approved")
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    redis_client.delete(view_counts.COUNTS_KEY)
    for _ in range(3):
        view_counts.count_view(gallery.pk)
    worker = celery_worker_factory(env={"VIEW_COUNT_FLUSH_INTERVAL": "1"}, beat=True)
    worker.wait_for_log(rf"Task {FLUSH_TASK}\[.*\] succeeded in .*'views': 3", timeout=60)
    gallery.refresh_from_db()
    assert gallery.view_count == 3
    assert not redis_client.exists(view_counts.COUNTS_KEY)
    redis_client.close()
