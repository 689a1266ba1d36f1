"""Builds that survive faults: claiming a delivery, losing a worker, timing out, and the sweeper.

A build's message can be delivered more than once (a worker lost mid-build, the sweeper sending a
build again while its first message still waits in a long queue), so a worker first *claims* the
build (``claim_build``) under a row lock, and counts the attempt on the row (``Build.attempts``).
When the pool process running a build dies, the worker's main process puts the build back in the
queue or, after ``BUILD_MAX_ATTEMPTS``, fails it (``worker_lost``); at the hard time limit it fails
it (``timed_out``). ``sweep_builds``, run by Celery beat every ``BUILD_SWEEP_INTERVAL`` seconds,
sends builds whose message never reached the broker or was lost, and recovers builds whose whole
worker died. Everything here takes row locks, so several workers and sweepers may run at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from gallery.models import FINAL_STATES, AuditEvent, Build, BuildState
from gallery.services import audit, queue

logger = logging.getLogger(__name__)

#: Seconds a build that never reached the broker is left to its own ``on_commit`` send before the
#: sweeper sends it (at most ``BUILD_QUEUED_GRACE``).
UNSENT_GRACE = 10
#: Builds one sweep sends or recovers at most; the next sweep takes the rest.
SWEEP_BATCH = 200


def fail_build(build: Build, reason: str, log_line: str | None = None) -> str:
    """Mark ``build`` failed with ``reason`` (for the publisher), log ``log_line`` (default
    ``"Failed: <reason>"``) and write the ``build_failed`` audit record; return ``"failed"``.

    Does nothing but log if the build is already final (cancelled meanwhile).
    """
    build.append_log(f"Failed: {reason}" if log_line is None else log_line)
    if build.set_state(BuildState.FAILED, reason):
        audit.audit(AuditEvent.Action.BUILD_FAILED, gallery=build.gallery_id, build=build, reason=reason)
    return BuildState.FAILED


def describe_duration(seconds: int) -> str:
    """``seconds`` for people: ``"12 minutes"``, ``"1 minute 30 seconds"``, ``"45 seconds"``."""
    minutes, rest = divmod(int(seconds), 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if rest or not minutes:
        parts.append(f"{rest} second{'s' if rest != 1 else ''}")
    return " ".join(parts)


def timeout_reason(seconds: int) -> str:
    """The failure reason of a build stopped after ``seconds`` (its soft or hard time limit)."""
    return (
        f"The build took longer than {describe_duration(seconds)} and was stopped. "
        "Try a smaller database or fewer plugins."
    )


def lost_reason(attempts: int) -> str:
    """The failure reason of a build whose worker was lost on each of its ``attempts``."""
    times = "once" if attempts == 1 else f"{attempts} times"
    return f"The build worker ran out of memory or was stopped, {times}; try a smaller database."


def _locked(build_id: str) -> Build | None:
    """The build ``build_id`` locked for this transaction (``select_for_update``), or ``None`` if it is gone."""
    return Build.objects.select_for_update(of=("self",)).select_related("gallery").filter(pk=build_id).first()


def claim_build(build_id: str, *, now: datetime | None = None) -> Build | None:
    """Start an attempt at build ``build_id`` for this delivery; return it, or ``None`` to drop the delivery.

    Under the build's row lock: a final build (or one deleted) is dropped. A queued build is
    claimed. A running build whose attempt started less than ``BUILD_HARD_TIME_LIMIT`` seconds
    ago is being built by another delivery: dropped. An older running attempt lost its worker
    unnoticed (the whole worker died): the build is claimed again, or failed with
    ``lost_reason`` once ``BUILD_MAX_ATTEMPTS`` attempts were made. Claiming counts the attempt
    (``attempts``, ``attempt_started_at``) and moves the build to ``validating``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        build = _locked(build_id)
        if build is None or build.is_final:
            return None
        if build.state != BuildState.QUEUED:
            recent = now - timedelta(seconds=settings.BUILD_HARD_TIME_LIMIT)
            if build.attempt_started_at is not None and build.attempt_started_at > recent:
                logger.info("build %s is already running (attempt %d); dropping this delivery", build.id, build.attempts)
                return None
            if build.attempts >= settings.BUILD_MAX_ATTEMPTS:
                fail_build(build, lost_reason(build.attempts))
                return None
            build.append_log(f"The worker of attempt {build.attempts} stopped answering; starting again.")
        Build.objects.filter(pk=build.pk).update(attempts=F("attempts") + 1, attempt_started_at=now)
        build.refresh_from_db(fields=["attempts", "attempt_started_at"])
        build.set_state(BuildState.VALIDATING)
    if build.attempts > 1:
        build.append_log(f"Attempt {build.attempts} of at most {settings.BUILD_MAX_ATTEMPTS}.")
    return build


def requeue(build: Build) -> bool:
    """Put a running ``build`` back to ``queued`` (its delivery will come again); return whether it moved."""
    moved = build.set_state(BuildState.QUEUED)
    if moved:
        Build.objects.filter(pk=build.pk).update(sent_at=timezone.now())
    return moved


def worker_lost(build_id: str) -> str | None:
    """The pool process building ``build_id`` died (SIGKILL, out of memory): requeue or fail the build.

    Called by the worker's main process before Celery puts the message back in the queue.
    Returns the build's new state (``"queued"`` or ``"failed"``), or ``None`` if it was gone or final.
    """
    with transaction.atomic():
        build = _locked(build_id)
        if build is None or build.is_final:
            return None
        if build.attempts >= settings.BUILD_MAX_ATTEMPTS:
            return fail_build(build, lost_reason(build.attempts))
        build.append_log(
            f"The build worker was lost during attempt {build.attempts} (out of memory or stopped); "
            "the build starts again."
        )
        requeue(build)
        return BuildState.QUEUED


def timed_out(build_id: str, seconds: int) -> str | None:
    """Build ``build_id`` passed its hard time limit of ``seconds`` and its process was killed: fail it.

    Returns ``"failed"``, or ``None`` if the build was gone or already final.
    """
    with transaction.atomic():
        build = _locked(build_id)
        if build is None or build.is_final:
            return None
        return fail_build(build, timeout_reason(seconds))


@dataclass
class SweepResult:
    """What one ``sweep_builds`` did: builds ``sent`` to the broker, ``restarted`` and ``failed``."""

    sent: list[str]
    restarted: list[str]
    failed: list[str]
    broker_down: bool = False


def sweep_builds(*, now: datetime | None = None) -> SweepResult:
    """Send lost or unsent queued builds and recover running builds whose worker died; idempotent.

    1. A running build whose attempt started more than ``BUILD_HARD_TIME_LIMIT`` +
       ``BUILD_RUNNING_GRACE`` seconds ago has no worker left (the hard limit would have
       stopped it): it is queued again, or failed with ``lost_reason`` once it used
       ``BUILD_MAX_ATTEMPTS``.
    2. A queued build that never reached the broker (``sent_at`` empty, older than
       ``UNSENT_GRACE`` s) or was sent more than ``BUILD_QUEUED_GRACE`` s ago is sent
       (again). A second copy of a message that was not lost is dropped by ``claim_build``.
       If the broker is unreachable, the sweep stops sending (``broker_down``) and the next one
       tries again.

    Rows are locked with ``SKIP LOCKED``: sweepers on several machines share the work. At most
    ``SWEEP_BATCH`` builds per step.
    """
    now = now or timezone.now()
    result = SweepResult(sent=[], restarted=[], failed=[])
    lost_before = now - timedelta(seconds=settings.BUILD_HARD_TIME_LIMIT + settings.BUILD_RUNNING_GRACE)
    running = Build.objects.exclude(state__in=(*FINAL_STATES, BuildState.QUEUED)).filter(
        Q(attempt_started_at__lt=lost_before) | Q(attempt_started_at__isnull=True, started_at__lt=lost_before)
    )
    with transaction.atomic():
        for build in running.select_for_update(skip_locked=True).order_by("created_at")[:SWEEP_BATCH]:
            if build.attempts >= settings.BUILD_MAX_ATTEMPTS:
                fail_build(build, lost_reason(build.attempts))
                result.failed.append(build.id)
            else:
                build.append_log(f"The worker of attempt {build.attempts} stopped answering; the build starts again.")
                build.set_state(BuildState.QUEUED)
                Build.objects.filter(pk=build.pk).update(sent_at=None)
                result.restarted.append(build.id)

    unsent_before = now - timedelta(seconds=min(UNSENT_GRACE, settings.BUILD_QUEUED_GRACE))
    resend_before = now - timedelta(seconds=settings.BUILD_QUEUED_GRACE)
    queued = Build.objects.filter(state=BuildState.QUEUED).filter(
        Q(sent_at__isnull=True, created_at__lt=unsent_before) | Q(sent_at__lt=resend_before)
    )
    with transaction.atomic():
        for build in queued.select_for_update(skip_locked=True).order_by("created_at")[:SWEEP_BATCH]:
            again = build.sent_at is not None
            try:
                queue.send_build(build.id)
            except queue.BROKER_ERRORS as exc:
                logger.warning("sweeper: the broker is unreachable (%s); will try again", exc)
                result.broker_down = True
                break
            Build.objects.filter(pk=build.pk).update(sent_at=timezone.now())
            if again:
                build.append_log("Still queued long after it was sent; sent to the build queue again.")
            else:
                build.append_log("Sent to the build queue (it could not be reached before).")
            result.sent.append(build.id)
    if result.sent or result.restarted or result.failed:
        logger.info(
            "sweeper: sent %s, restarted %s, failed %s", result.sent, result.restarted, result.failed
        )
    return result
