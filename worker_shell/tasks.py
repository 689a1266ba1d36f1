"""Build tasks: load rows by id, call ``builder``, record state and log on the row.

A task is idempotent: the same build id always writes the same storage keys, a
build already in a final state returns at once, and a second delivery of a build
that is running elsewhere is dropped (``gallery.services.recovery.claim_build``), so
``acks_late``, redelivery after a lost worker and the sweeper's re-sends are safe.
Faults the build's own process cannot report (hard time limit, a killed pool
process) are handled in the worker's main process by ``BuildTaskRequest``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePath

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.worker.request import Request
from django import db
from django.conf import settings

from builder.director import CRASH_REASON, BuildCancelled, BuildDirector, BuildError, BuildPhase, BuildRequest
from builder.download import store_bundle_zip
from builder.manifest import Manifest
from builder.sqlite_check import CheckLimits
from builder.tabular import format_of
from builder.wheels import WheelError
from gallery.models import Build, BuildState
from gallery.services import publishing, recovery
from gallery.services.queue import BUILD_TASK, DOWNLOAD_TASK
from gallery.services.recovery import fail_build
from gallery.storage import get_storage
from worker_shell.celery import app
from worker_shell.tempfiles import build_temp_dir, remove_build_temp_dir

logger = logging.getLogger(__name__)

#: Faults of PyPI that a later try may not meet; the task retries them with backoff. Storage
#: faults are retried inside the store (``STORAGE_RETRY_BUDGET``), so they fail the build at once.
TRANSIENT_FAULTS = (WheelError,)

__all__ = [
    "BuildTask", "BuildTaskRequest", "build_facts", "build_gallery", "build_request", "database_check_limits",
    "fail_build", "store_download", "sweep_builds",
]


def build_facts(manifest: Manifest) -> dict[str, object]:
    """What the app shows about a build, from its manifest: ``{"tables", "has_card", "download_bytes", "scan_flags", "warnings"}``.

    ``tables`` is ``builder.tables.describe_tables``'s list; ``has_card`` whether
    ``builds/<build-id>/card.png`` was stored; ``download_bytes`` the self-host zip's size
    (``None`` when the manifest records no zip); ``scan_flags`` ``builder.scan.scan_database``'s
    flags, stored as ``Build.scan_flags`` for the moderation queue; ``warnings`` the database
    check's warnings for the publisher (``Build.warnings``, shown on the build page). A manifest
    older than one of them (``builder.manifest``) gives its default: no tables, no card, size
    unknown, no flags, no warnings.
    """
    return {
        "tables": list(manifest.tables),
        "has_card": manifest.card is not None,
        "download_bytes": manifest.download.size if manifest.download else None,
        "scan_flags": list(manifest.scan),
        "warnings": list(manifest.warnings),
    }


def database_check_limits() -> CheckLimits:
    """The settings' limits of the build's database check (``builder.sqlite_check.CheckLimits``)."""
    return CheckLimits(
        max_bytes=settings.UPLOAD_MAX_BYTES,
        seconds=settings.DATABASE_CHECK_SECONDS,
        memory_bytes=settings.DATABASE_CHECK_MEMORY_MB * 1024 * 1024,
        max_tables=settings.DATABASE_MAX_TABLES,
        max_columns=settings.DATABASE_MAX_COLUMNS,
        max_schema_bytes=settings.DATABASE_MAX_SCHEMA_BYTES,
    )


def build_request(build: Build, temp_dir: Path) -> BuildRequest:
    """The director's request for ``build``: its rows, and this worker's settings and files.

    The upload is copied from storage into ``temp_dir / "source<suffix>"`` (the director does it);
    every other temporary file goes under ``temp_dir`` too. A CSV, TSV, JSON or Excel upload (its
    key's ending, ``builder.tabular.format_of``) is converted first, into the table
    ``publishing.table_name_for`` names, within ``CONVERTED_MAX_BYTES``.
    """
    fmt = format_of(build.source_key) or "sqlite"
    return BuildRequest(
        build_id=build.id,
        database_path=temp_dir / f"source{PurePath(build.source_key).suffix or '.db'}",
        source_key=build.source_key,
        source_format=fmt,
        table_name=publishing.table_name_for(build) if fmt != "sqlite" else "",
        full_text_search=build.full_text_search,
        search_columns=build.search_columns,
        conversion_limits=replace(database_check_limits(), max_bytes=settings.CONVERTED_MAX_BYTES),
        database_name=build.gallery.database_name,
        # The build's own copy of the settings (what a moderator approves with it).
        title=build.title,
        description=build.description,
        plugins=tuple(build.plugins),
        metadata=build.metadata,
        datasette_version=build.datasette_version,
        source_sha256=build.source_sha256,
        pyodide_version=settings.PYODIDE_VERSION,
        check_limits=database_check_limits(),
        runtime_dir=Path(settings.PYODIDE_RUNTIME_DIR),
        cache_dir=Path(settings.WHEEL_CACHE_DIR),
        temp_dir=temp_dir,
        node_max_old_space_mb=settings.BUILD_NODE_MAX_OLD_SPACE_MB,
        lazy_database_min_bytes=settings.LAZY_DATABASE_MIN_BYTES,
        storage_retry_budget=settings.STORAGE_RETRY_BUDGET,
    )


def _in_main_process(what: str, build_id: str, action: Callable[[], object]) -> None:
    """Run ``action`` (database work for build ``build_id``) in the worker's main process.

    A fault here (the database down) is logged, not raised: Celery must still handle the
    message, and the sweeper recovers the build later. The main process's database
    connection is closed afterwards, so a pool process forked later never shares it.
    """
    try:
        action()
    except Exception:
        logger.exception("could not record that build %s %s", build_id, what)
    finally:
        db.connections.close_all()


class BuildTaskRequest(Request):
    """A build delivery as the worker's main process sees it: the faults its pool process cannot report.

    Read the Docs' pattern. At the hard time limit the pool process is killed with no chance
    to write anything, so ``on_timeout`` fails the build with the reason; when the pool process
    dies (SIGKILL, the kernel's out-of-memory killer) Celery reports ``WorkerLostError`` to
    ``on_failure``, which queues the build again or fails it after ``BUILD_MAX_ATTEMPTS``
    (``gallery.services.recovery.worker_lost``). Both remove the build's temporary files, and both write
    before Celery acknowledges or requeues the message, so the next delivery sees the new state.
    """

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft and self.args:
            build_id = self.args[0]
            # The pool kills the process right after this handler; killing it first means it
            # writes no temporary file after they are removed below.
            if self.worker_pid and self.worker_pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.worker_pid, signal.SIGKILL)
            _in_main_process(
                "timed out", build_id, lambda: recovery.timed_out(build_id, int(timeout))
            )
            remove_build_temp_dir(build_id)
        super().on_timeout(soft, timeout)

    def on_failure(self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if isinstance(exc, WorkerLostError) and self.args:
            build_id = self.args[0]
            remove_build_temp_dir(build_id)
            _in_main_process("lost its worker", build_id, lambda: recovery.worker_lost(build_id))
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class BuildTask(Task):
    """Marks the build failed once retries of a package-index fault are used up."""

    Request = BuildTaskRequest

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        if not isinstance(exc, TRANSIENT_FAULTS):
            return  # time limits and lost workers: BuildTaskRequest
        build = Build.objects.filter(pk=args[0]).first() if args else None
        if build is not None and not build.is_final:
            build.append_log(f"Gave up after {self.request.retries} retries: {exc}")
            fail_build(
                build,
                "The package index (PyPI) was unavailable during the build. "
                "Nothing was published; start the build again later (Rebuild).",
            )


@app.task(
    name=BUILD_TASK,
    base=BuildTask,
    bind=True,
    acks_late=True,
    # The build is failed by BuildTaskRequest.on_timeout: a second delivery would only drop it.
    acks_on_timeout=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_FAULTS,
    retry_backoff=settings.BUILD_RETRY_BACKOFF,
    retry_backoff_max=120,
    max_retries=settings.BUILD_MAX_RETRIES,
    soft_time_limit=settings.BUILD_SOFT_TIME_LIMIT,
    time_limit=settings.BUILD_HARD_TIME_LIMIT,
)
def build_gallery(self: Task, build_id: str) -> str:
    """Build and publish the bundle of ``Build`` ``build_id``; return its state afterwards.

    First claims the build (``gallery.services.recovery.claim_build``): a final build, or one that
    another delivery is building, returns its state at once. Then runs the build director
    (``builder.director``) on the build's rows: a ``BuildError`` fails the build with the
    director's reason (a bad database, an unknown plugin, a storage fault that outlasted the
    store's retry budget...); ``WheelError`` is retried with backoff; the soft time limit and
    any crash fail it with reasons of their own. Temporary files live in
    ``tempfiles.build_temp_dir`` and are removed.
    """
    build = recovery.claim_build(build_id)
    if build is None:
        return Build.objects.filter(pk=build_id).values_list("state", flat=True).first() or "gone"

    def on_state(phase: BuildPhase) -> None:
        if not build.set_state(phase):
            raise BuildCancelled()
        build.append_log(f"== {BuildState(phase).label}")

    try:
        with build_temp_dir(build.id) as tmp:
            director = BuildDirector(build_request(build, tmp), storage=get_storage(), on_state=on_state, log=build.append_log)
            result = director.run()
    except BuildError as exc:
        return fail_build(build, exc.reason, log_line=exc.log_line)
    except SoftTimeLimitExceeded:
        return fail_build(build, recovery.timeout_reason(settings.BUILD_SOFT_TIME_LIMIT))
    except TRANSIENT_FAULTS as exc:
        build.append_log(f"Transient fault, will retry: {exc}")
        recovery.requeue(build)  # the retry's delivery claims it again
        raise
    except Exception:
        logger.exception("build %s crashed", build_id)
        return fail_build(build, CRASH_REASON, log_line=traceback.format_exc())

    Build.objects.filter(pk=build.pk).update(bundle_bytes=result.bundle_bytes, **build_facts(result.manifest))
    try:
        went_live = publishing.finish_build(build)
    except ValueError as exc:
        fail_build(build, f"Not published: {exc}.")
        return Build.objects.get(pk=build.pk).state
    publishing.mark_ready(build, went_live=went_live)
    return build.state


@app.task(name="worker_shell.tasks.sweep_builds", acks_late=False, time_limit=300)
def sweep_builds() -> dict[str, object]:
    """Run ``gallery.services.recovery.sweep_builds`` (Celery beat, every ``BUILD_SWEEP_INTERVAL`` seconds).

    Returns ``{"sent": [build ids], "restarted": [...], "failed": [...], "broker_down": bool}``.
    """
    result = recovery.sweep_builds()
    return {"sent": result.sent, "restarted": result.restarted, "failed": result.failed, "broker_down": result.broker_down}


@app.task(
    name=DOWNLOAD_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.BUILD_SOFT_TIME_LIMIT,
    time_limit=settings.BUILD_HARD_TIME_LIMIT,
)
def store_download(build_id: str) -> int | None:
    """Store the self-host zip of ``Build`` ``build_id``, made before builds wrote one; return its size in bytes.

    Sent by the content origin on the first request for such a build's ``/_download/``
    (``gallery.content``). Makes the zip from the store once (``builder.download.store_bundle_zip``)
    and records its size as ``Build.download_bytes``, which tells the content origin it is
    stored. A build that is not ready, whose files were removed, or that has its zip already
    returns at once (its recorded size, or ``None``). If the build's files are removed while the
    zip is made, the build's folder is removed again, zip included. Storage faults and a
    manifest that cannot make a zip raise (Celery logs them); nothing is recorded then, and a
    later request sends the task again.
    """
    build = Build.objects.filter(pk=build_id).first()
    if build is None or build.state != BuildState.READY or build.files_deleted or build.download_bytes is not None:
        return build.download_bytes if build is not None else None
    storage = get_storage()
    with build_temp_dir(build.id) as tmp:
        size = store_bundle_zip(storage, build.id, build.finished_at or build.created_at, temp_dir=tmp)
    if not Build.objects.filter(pk=build.pk, files_deleted=False).update(download_bytes=size):
        # A takedown, rejection or deletion removed the build's files meanwhile: the zip goes too.
        storage.delete_prefix(f"builds/{build.id}/")
        return None
    return size
