"""gallery.services.recovery: claiming deliveries, lost workers, time limits and the build sweeper, on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from gallery.models import AuditEvent, Build, BuildState, Gallery
from gallery.services import queue, recovery
from gallery.services.queue import send_build as real_send_build  # before the autouse fixture replaces it
from tests.support.loopback import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_queued(gallery: Gallery) -> Callable[..., Build]:
    """``make_queued(sent_ago=None, **fields) -> Build``: a queued build, sent ``sent_ago`` seconds ago (None: never)."""

    def make(sent_ago: float | None = 0, **fields: object) -> Build:
        now = timezone.now()
        build = Build.objects.create(
            gallery=gallery, source_key="uploads/q/source.db", source_sha256="1" * 64, source_bytes=10,
            sent_at=None if sent_ago is None else now - timedelta(seconds=sent_ago), **fields,
        )  # fmt: skip
        # Old enough for the sweeper's grace for unsent builds.
        Build.objects.filter(pk=build.pk).update(created_at=now - timedelta(hours=1))
        build.refresh_from_db()
        return build

    return make


def test_a_claim_counts_the_attempt_and_a_second_delivery_of_a_running_build_is_dropped(make_queued):
    build = make_queued()
    claimed = recovery.claim_build(build.id)
    assert claimed is not None and claimed.attempts == 1 and claimed.state == BuildState.VALIDATING
    assert claimed.attempt_started_at is not None
    assert recovery.claim_build(build.id) is None  # the sweeper's second copy, while the first runs
    build.refresh_from_db()
    assert build.attempts == 1


@pytest.mark.parametrize("state", [BuildState.READY, BuildState.FAILED, BuildState.CANCELLED])
def test_a_final_build_is_never_claimed(make_queued, state):
    build = make_queued(state=state)
    assert recovery.claim_build(build.id) is None
    assert recovery.claim_build("nosuchbuild00000") is None


def test_an_attempt_older_than_the_hard_limit_lost_its_worker_and_is_claimed_again_until_max_attempts(
    make_queued, settings
):
    settings.BUILD_MAX_ATTEMPTS = 2
    build = make_queued()
    recovery.claim_build(build.id)
    later = timezone.now() + timedelta(seconds=settings.BUILD_HARD_TIME_LIMIT + 1)
    again = recovery.claim_build(build.id, now=later)
    assert again is not None and again.attempts == 2
    assert "stopped answering" in again.log and "Attempt 2 of at most 2." in again.log
    assert recovery.claim_build(build.id, now=later + timedelta(seconds=settings.BUILD_HARD_TIME_LIMIT + 1)) is None
    build.refresh_from_db()
    assert build.state == BuildState.FAILED
    assert build.failure_reason == "The build worker ran out of memory or was stopped, 2 times; try a smaller database."


def test_a_lost_worker_requeues_the_build_until_max_attempts_then_fails_it_with_the_reason(make_queued, settings):
    settings.BUILD_MAX_ATTEMPTS = 3
    build = make_queued()
    for attempt in (1, 2):
        recovery.claim_build(build.id)
        assert recovery.worker_lost(build.id) == BuildState.QUEUED
        build.refresh_from_db()
        assert build.state == BuildState.QUEUED and build.attempts == attempt
        assert f"lost during attempt {attempt}" in build.log
    recovery.claim_build(build.id)
    assert recovery.worker_lost(build.id) == BuildState.FAILED
    build.refresh_from_db()
    assert build.failure_reason == "The build worker ran out of memory or was stopped, 3 times; try a smaller database."
    assert AuditEvent.objects.filter(build_id=build.id, action=AuditEvent.Action.BUILD_FAILED).count() == 1
    assert recovery.worker_lost(build.id) is None  # final: nothing more happens


def test_a_hard_time_limit_fails_the_build_with_the_time_in_words(make_queued):
    build = make_queued()
    recovery.claim_build(build.id)
    assert recovery.timed_out(build.id, 720) == BuildState.FAILED
    build.refresh_from_db()
    assert build.failure_reason == (
        "The build took longer than 12 minutes and was stopped. Try a smaller database or fewer plugins."
    )
    assert recovery.timed_out(build.id, 720) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(720, "12 minutes"), (60, "1 minute"), (90, "1 minute 30 seconds"), (45, "45 seconds"), (1, "1 second")],
)
def test_durations_are_said_in_words(seconds, words):
    assert recovery.describe_duration(seconds) == words


def test_the_sweeper_sends_unsent_and_long_queued_builds_once_and_leaves_fresh_ones(
    make_queued, sent_builds, settings
):
    unsent = make_queued(sent_ago=None)
    lost = make_queued(sent_ago=settings.BUILD_QUEUED_GRACE + 5)
    fresh = make_queued(sent_ago=5)
    result = recovery.sweep_builds()
    assert sorted(result.sent) == sorted(sent_builds) == sorted([unsent.id, lost.id])
    assert fresh.id not in sent_builds
    for build, line in ((unsent, "it could not be reached before"), (lost, "sent to the build queue again")):
        build.refresh_from_db()
        assert build.sent_at is not None and line in build.log
    assert recovery.sweep_builds().sent == []  # idempotent: just sent
    assert len(sent_builds) == 2


def test_the_sweeper_restarts_a_build_whose_whole_worker_died_and_fails_it_after_max_attempts(
    make_queued, sent_builds, settings
):
    settings.BUILD_MAX_ATTEMPTS = 2
    build = make_queued()
    recovery.claim_build(build.id)
    build.set_state(BuildState.BUNDLING)
    past_limit = timezone.now() + timedelta(seconds=settings.BUILD_HARD_TIME_LIMIT + settings.BUILD_RUNNING_GRACE + 1)
    assert recovery.sweep_builds(now=timezone.now()).restarted == []  # still within its time
    result = recovery.sweep_builds(now=past_limit)
    assert result.restarted == [build.id] and result.sent == [build.id] == sent_builds
    build.refresh_from_db()
    assert build.state == BuildState.QUEUED and "stopped answering" in build.log

    recovery.claim_build(build.id)  # attempt 2, whose worker dies too
    result = recovery.sweep_builds(
        now=past_limit + timedelta(seconds=settings.BUILD_HARD_TIME_LIMIT + settings.BUILD_RUNNING_GRACE + 1)
    )
    assert result.failed == [build.id]
    build.refresh_from_db()
    assert build.state == BuildState.FAILED and "2 times" in build.failure_reason


def test_the_sweeper_stops_sending_while_the_broker_is_down(make_queued, monkeypatch, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: a broker that is down
    monkeypatch.setattr(queue, "app", queue.make_app())
    monkeypatch.setattr(queue, "send_build", real_send_build)
    first, second = make_queued(sent_ago=None), make_queued(sent_ago=None)
    result = recovery.sweep_builds()
    assert result.broker_down and result.sent == []
    assert Build.objects.filter(pk__in=[first.id, second.id], sent_at__isnull=True).count() == 2


@pytest.mark.django_db(transaction=True)
def test_sweepers_on_two_machines_skip_the_rows_the_other_one_holds(make_queued, sent_builds):
    if connection.vendor != "postgresql":
        pytest.fail("row locks need PostgreSQL: run with DATABASE_URL=postgres://...")
    held, free = make_queued(sent_ago=None), make_queued(sent_ago=None)
    locked, release = threading.Event(), threading.Event()

    def other_machine() -> None:
        with transaction.atomic():
            Build.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_machine)
    thread.start()
    try:
        assert locked.wait(10)
        assert recovery.sweep_builds().sent == [free.id]
    finally:
        release.set()
        thread.join()
    assert recovery.sweep_builds().sent == [held.id]
    assert sent_builds == [free.id, held.id]
