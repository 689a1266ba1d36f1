"""Builds under real faults: prefork workers killed or frozen mid-build, Redis restarted, S3 frozen.

Every test runs real processes (Celery's prefork pool as in production, PostgreSQL, Redis, moto's
S3 server) and causes the fault for real: SIGKILL of the pool process that runs the build (what
the kernel's out-of-memory killer does), SIGSTOP of it (a process that no longer answers even its
soft time limit), a Redis restart without persistence, a frozen S3 endpoint. Small databases and
shrunk limits keep each test well under a minute.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from gallery.models import Build, BuildState, Gallery
from gallery.services import queue

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

#: States in which a worker is building.
RUNNING = (BuildState.VALIDATING, BuildState.RESOLVING, BuildState.BUNDLING, BuildState.UPLOADING)


def the_pool_process(worker) -> int:  # type: ignore[no-untyped-def]
    """The one pool process of a ``--concurrency=1`` prefork worker."""
    deadline = time.monotonic() + 10
    while not (pids := worker.pool_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pids) == 1, pids
    return pids[0]


def test_a_worker_killed_mid_build_is_replaced_and_the_build_is_delivered_again_and_completes(
    celery_worker_factory, make_sqlite, publish, wait_for_build
) -> None:
    worker = celery_worker_factory(pool="prefork")
    build = publish(make_sqlite("killed.db"))
    build = wait_for_build(build, until=lambda b: b.state == BuildState.BUNDLING or b.is_final, timeout=60, every=0.05)
    assert build.state == BuildState.BUNDLING, build.log
    os.kill(the_pool_process(worker), signal.SIGKILL)

    build = wait_for_build(build, timeout=90)
    assert build.state == BuildState.READY, build.log
    assert build.attempts == 2
    assert "The build worker was lost during attempt 1" in build.log and "Attempt 2 of at most 3." in build.log
    assert Gallery.objects.get(pk=build.gallery_id).live_build_id == build.id


def test_a_build_that_always_kills_its_worker_fails_after_max_attempts_with_the_reason(
    celery_worker_factory, make_sqlite, publish, wait_for_build, settings
) -> None:
    worker = celery_worker_factory(pool="prefork")
    build = publish(make_sqlite("deadly.db"))
    killed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        build.refresh_from_db()
        if build.is_final:
            break
        if build.state in RUNNING and build.attempts > killed:
            os.kill(the_pool_process(worker), signal.SIGKILL)  # as the OOM killer would, at every attempt
            killed = build.attempts
        time.sleep(0.05)
    assert build.state == BuildState.FAILED, build.log
    assert killed == build.attempts == settings.BUILD_MAX_ATTEMPTS == 3
    assert build.failure_reason == (
        "The build worker ran out of memory or was stopped, 3 times; try a smaller database."
    )
    assert Gallery.objects.get(pk=build.gallery_id).live_build_id is None
    # Delivered again once more after the last loss, it is dropped: the build stays failed.
    worker.wait_for_log(r"build_gallery\[.*\] succeeded in .*: 'failed'", timeout=30)


def test_a_build_over_its_hard_time_limit_fails_with_the_reason_and_leaves_no_temporary_files(
    celery_worker_factory, make_sqlite, publish, wait_for_build, glasshouse_data_dir: Path
) -> None:
    worker = celery_worker_factory(pool="prefork", env={"BUILD_SOFT_TIME_LIMIT": "2", "BUILD_HARD_TIME_LIMIT": "4"})
    build = publish(make_sqlite("frozen.db"))
    scratch = glasshouse_data_dir / "tmp" / "builds" / build.id
    deadline = time.monotonic() + 30
    while not any(scratch.glob("attempt-*/source.db")):
        assert time.monotonic() < deadline, "the build never wrote its temporary files"
        time.sleep(0.02)
    # A frozen process cannot even take its soft time limit: only the hard limit stops it.
    os.kill(the_pool_process(worker), signal.SIGSTOP)

    build = wait_for_build(build, timeout=30)
    assert build.state == BuildState.FAILED, build.log
    assert build.failure_reason == (
        "The build took longer than 4 seconds and was stopped. Try a smaller database or fewer plugins."
    )
    worker.wait_for_log(r"Hard time limit \(4s\) exceeded", timeout=5)
    assert not scratch.exists()
    assert list((glasshouse_data_dir / "tmp" / "builds").iterdir()) == []
    assert Gallery.objects.get(pk=build.gallery_id).live_build_id is None


def test_builds_queued_across_a_redis_restart_or_sent_while_redis_is_down_all_end_ready(
    celery_worker_factory, private_redis, make_sqlite, publish, wait_for_build, settings, monkeypatch
) -> None:
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    settings.CELERY_BROKER_URL = url
    monkeypatch.setattr(queue, "app", queue.make_app())
    before_restart = publish(make_sqlite("queued.db"))
    assert Build.objects.get(pk=before_restart.pk).sent_at is not None
    private_redis.stop()  # no persistence: the message is gone
    private_redis.start()
    private_redis.stop()
    while_down = publish(make_sqlite("while-down.db"))  # accepted and stored, not sent
    assert Build.objects.get(pk=while_down.pk).waits_for_queue
    private_redis.start()

    worker = celery_worker_factory(
        pool="prefork", concurrency=2, beat=True,
        env={"REDIS_URL": url, "BUILD_SWEEP_INTERVAL": "1", "BUILD_QUEUED_GRACE": "2"},
    )  # fmt: skip
    for build in (before_restart, while_down):
        build = wait_for_build(build, timeout=90)
        assert build.state == BuildState.READY, build.log
        assert build.attempts == 1
    assert "sent to the build queue again" in Build.objects.get(pk=before_restart.pk).log
    assert "Sent to the build queue (it could not be reached before)." in Build.objects.get(pk=while_down.pk).log
    assert "sweep_builds" in worker.log


@pytest.fixture
def storage_worker(celery_worker_factory, private_s3):  # type: ignore[no-untyped-def]
    """``storage_worker(budget) -> (worker, moto server)``: a prefork worker on the private S3 server,
    retrying storage faults for ``budget`` seconds, each S3 request bounded by 1 s."""

    def start(budget: int):  # type: ignore[no-untyped-def]
        server, bucket = private_s3
        worker = celery_worker_factory(
            pool="prefork", env={**bucket.env, "STORAGE_RETRY_BUDGET": str(budget), "S3_TIMEOUT": "1"}
        )
        return worker, server

    return start


def freeze_while_uploading(server, build, wait_for_build) -> Build:  # type: ignore[no-untyped-def]
    """Freeze moto as soon as ``build`` starts uploading its bundle; return the build then."""
    build = wait_for_build(build, until=lambda b: b.state == BuildState.UPLOADING or b.is_final, timeout=60, every=0.02)
    assert build.state == BuildState.UPLOADING, build.log
    server.freeze()
    return build


def test_a_store_that_stops_answering_mid_upload_for_a_while_only_delays_the_build(
    storage_worker, make_sqlite, publish, wait_for_build
) -> None:
    worker, server = storage_worker(budget=60)
    build = freeze_while_uploading(server, publish(make_sqlite("s3-pause.db")), wait_for_build)
    time.sleep(3)  # three 1 s S3 timeouts: the build retries and waits
    assert Build.objects.get(pk=build.pk).state == BuildState.UPLOADING
    server.thaw()

    build = wait_for_build(build, timeout=90)
    assert build.state == BuildState.READY, build.log
    assert "retrying in" in worker.log
    assert Gallery.objects.get(pk=build.gallery_id).live_build_id == build.id


def test_a_store_down_longer_than_the_retry_budget_fails_the_build_clearly_and_nothing_goes_live(
    storage_worker, make_sqlite, publish, wait_for_build
) -> None:
    worker, server = storage_worker(budget=4)
    build = freeze_while_uploading(server, publish(make_sqlite("s3-down.db")), wait_for_build)
    try:
        build = wait_for_build(build, timeout=40)
    finally:
        server.thaw()
    assert build.state == BuildState.FAILED, build.log
    assert build.failure_reason == (
        "Storage was unavailable during the build (retried for up to 4 seconds). "
        "Nothing was published; start the build again later (Rebuild)."
    )
    assert "gave up after" in build.log and "retrying in" in worker.log
    assert Gallery.objects.get(pk=build.gallery_id).live_build_id is None
