"""Build tasks: load rows by id, call ``builder``, record state and log on the row.

A task is idempotent: the same build id always writes the same storage keys,
and a build already in a final state returns at once, so ``acks_late`` and
redelivery after a lost worker are safe.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from pathlib import Path
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from builder.bundle import BuildError, BuildRequest, build_bundle
from builder.storage import MissingKey, StorageError
from builder.wheels import WheelError
from gallery import services
from gallery.models import AuditEvent, Build, BuildState, Gallery
from gallery.storage import get_storage
from worker_shell.celery import app
from worker_shell.tempfiles import build_temp_dir

logger = logging.getLogger(__name__)

#: Faults of the store or of PyPI that a later attempt may not meet.
TRANSIENT_FAULTS = (StorageError, WheelError)


def build_facts(manifest: dict[str, Any]) -> dict[str, object]:
    """What the app shows about a build, from its manifest: ``{"tables", "has_card", "download_bytes", "scan_flags"}``.

    ``manifest["tables"]`` is ``builder.tables.describe_tables``'s list, ``manifest["card"]``
    is present (any true value) when ``builds/<build-id>/card.png`` was stored,
    ``manifest["download_bytes"]`` is the self-host zip's size, and ``manifest["scan"]``
    is ``builder.scan.scan_database``'s list of flags, stored as ``Build.scan_flags`` for
    the moderation queue. Each is optional: a bundle that lacks one (or whose size or
    scan is not of the right type) leaves the default (no tables, no card, size unknown,
    no flags).
    """
    download_bytes = manifest.get("download_bytes")
    scan = manifest.get("scan")
    return {
        "tables": list(manifest.get("tables", [])),
        "has_card": bool(manifest.get("card")),
        "download_bytes": download_bytes if isinstance(download_bytes, int) else None,
        "scan_flags": scan if isinstance(scan, list) else [],
    }


class BuildTask(Task):
    """Marks the build failed once retries of a transient fault are used up."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # type: ignore[no-untyped-def]
        build = Build.objects.filter(pk=args[0]).first() if args else None
        if build is not None and not build.is_final:
            build.append_log(f"Gave up after {self.request.retries} retries: {exc}")
            fail_build(
                build,
                "Storage or the package index was unavailable during the build. "
                "Nothing was published; start the build again later (Rebuild).",
            )


def fail_build(build: Build, reason: str, log_line: str | None = None) -> str:
    """Mark ``build`` failed with ``reason`` (for the publisher), log ``log_line`` (default
    ``"Failed: <reason>"``) and write the ``build_failed`` audit record; return ``"failed"``.

    Does nothing but log if the build is already final (cancelled meanwhile).
    """
    build.append_log(f"Failed: {reason}" if log_line is None else log_line)
    if build.set_state(BuildState.FAILED, reason):
        services.audit(AuditEvent.Action.BUILD_FAILED, gallery=build.gallery_id, build=build, reason=reason)
    return BuildState.FAILED


@app.task(
    name="worker_shell.tasks.build_gallery",
    base=BuildTask,
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_FAULTS,
    retry_backoff=settings.BUILD_RETRY_BACKOFF,
    retry_backoff_max=120,
    max_retries=settings.BUILD_MAX_RETRIES,
    soft_time_limit=settings.BUILD_SOFT_TIME_LIMIT,
    time_limit=settings.BUILD_HARD_TIME_LIMIT,
)
def build_gallery(self: Task, build_id: str) -> str:
    """Build and publish the bundle of ``Build`` ``build_id``; return its final state.

    User errors (bad database, unknown plugin) fail the build at once with the
    builder's reason. ``StorageError``/``WheelError`` are retried with backoff.
    """
    build = Build.objects.select_related("gallery").get(pk=build_id)
    if build.is_final:
        return build.state
    gallery = build.gallery
    if self.request.retries:
        build.append_log(f"Attempt {self.request.retries + 1}.")

    def on_state(state: str) -> None:
        if not build.set_state(state):
            raise BuildError("The build was cancelled.")
        build.append_log(f"== {BuildState(state).label}")

    storage = get_storage()
    try:
        with build_temp_dir(build.id) as tmp:
            source = tmp / "source.db"
            with storage.open(build.source_key) as src, source.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            result = build_bundle(
                BuildRequest(
                    build_id=build.id,
                    database_path=source,
                    database_name=gallery.database_name,
                    title=gallery.title,
                    description=gallery.description,
                    plugins=tuple(gallery.plugins),
                    metadata=gallery.metadata,
                    datasette_version=gallery.datasette_version,
                    source_sha256=build.source_sha256,
                    pyodide_version=settings.PYODIDE_VERSION,
                ),
                storage=storage,
                runtime_dir=Path(settings.PYODIDE_RUNTIME_DIR),
                cache_dir=Path(settings.WHEEL_CACHE_DIR),
                on_state=on_state,
                log=build.append_log,
                temp_dir=tmp,
                node_max_old_space_mb=settings.BUILD_NODE_MAX_OLD_SPACE_MB,
            )
    except BuildError as exc:
        return fail_build(build, exc.args[0])
    except MissingKey:
        return fail_build(build, "The uploaded file is no longer in storage. Upload the database again.")
    except SoftTimeLimitExceeded:
        minutes = settings.BUILD_SOFT_TIME_LIMIT // 60
        return fail_build(
            build,
            f"The build took longer than {minutes} minutes and was stopped. Try a smaller database or fewer plugins.",
        )
    except TRANSIENT_FAULTS as exc:
        build.append_log(f"Transient fault, will retry: {exc}")
        raise
    except Exception:
        logger.exception("build %s crashed", build_id)
        return fail_build(
            build,
            "The build crashed on our side; the log has the details. Nothing was published. Try again later.",
            log_line=traceback.format_exc(),
        )

    Build.objects.filter(pk=build.pk).update(bundle_bytes=result.bundle_bytes, **build_facts(result.manifest))
    try:
        went_live = services.finish_build(build)
    except ValueError as exc:
        fail_build(build, f"Not published: {exc}.")
        return Build.objects.get(pk=build.pk).state
    gallery.refresh_from_db(fields=["moderation_state", "live_build"])
    if went_live:
        waiting = "" if gallery.is_public else " (public once a moderator approves it)"
    elif build.needs_review and gallery.moderation_state == Gallery.ModerationState.APPROVED:
        waiting = " (this version goes live once a moderator approves it; the current one stays live until then)"
    else:
        waiting = f" (a newer build is live there; this one stays at {gallery.pinned_url(build.id)})"
    # The log is complete before the state is final: whoever sees "ready" sees the whole log.
    build.append_log(f"== Ready. Gallery URL: {gallery.url}{waiting}")
    if not build.set_state(BuildState.READY):
        build.refresh_from_db(fields=["state"])
        build.append_log(f"The build was {build.state} meanwhile.")
    return build.state
