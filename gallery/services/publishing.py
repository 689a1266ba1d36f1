"""Builds and what goes live: who vouches for a build, queueing, rebuilding, and publishing a finished build."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gallery.models import (
    FINAL_STATES,
    Actor,
    Approval,
    AuditEvent,
    Build,
    BuildReview,
    BuildState,
    Gallery,
    ModerationState,
    bundled_settings,
    is_trusted,
    new_build_id,
    signed_in,
)
from gallery.services import queue
from gallery.services.audit import audit
from gallery.services.quotas import QuotaSubject, check_quota
from gallery.services.removal import remove_build_files
from gallery.services.uploads import UploadRejected

logger = logging.getLogger(__name__)


def queue_build(
    gallery: Gallery,
    build_id: str,
    source_key: str,
    sha256: str,
    size: int,
    *,
    bundle_settings: dict[str, object],
    approval: str = "",
    by: Actor = None,
) -> Build:
    """Create the queued ``Build`` ``build_id`` of ``gallery`` from the upload stored at ``source_key``.

    ``bundle_settings`` is what it bakes in (``Build.bundle_settings``); with an ``approval`` (an
    ``Approval`` value) it is approved from the start, vouched for by ``by``; else it waits
    for a moderator's review.
    """
    user = signed_in(by)
    return Build.objects.create(
        id=build_id,
        gallery=gallery,
        state=BuildState.QUEUED,
        source_key=source_key,
        source_sha256=sha256,
        source_bytes=size,
        bundle_settings=bundle_settings,
        review=BuildReview.APPROVED if approval else BuildReview.PENDING,
        approval=approval,
        reviewed_at=timezone.now() if approval else None,
        reviewed_by=user if approval else None,
    )


def approval_for(by: Actor, *, by_operator: bool = False) -> str:
    """Who vouches for a build that ``by`` starts (a user, ``AnonymousUser`` or ``None``), as an ``Approval``
    value, or ``""`` when a moderator must review it.

    The operator's ``publish`` command (``by_operator``), ``GALLERY_AUTO_APPROVE``, and staff or
    trusted publishers (``is_trusted``) publish without review; anyone else, and the anonymous
    holder of a management link, waits for a moderator.
    """
    if by_operator:
        return Approval.OPERATOR
    if settings.GALLERY_AUTO_APPROVE:
        return Approval.AUTOMATIC
    if is_trusted(by):
        return Approval.TRUSTED
    return ""


class BuildInProgress(UploadRejected):
    """The gallery already has a build queued or running (one at a time); ``args[0]`` says what to do."""


def check_no_build_running(gallery: Gallery) -> None:
    """Raise ``BuildInProgress`` if a build of ``gallery`` has not finished (queued or running).

    Each gallery builds one version at a time: a loop of rebuilds or uploads cannot queue more
    work than one build. Call it under the gallery's row lock to count builds made meanwhile.
    """
    running = gallery.builds.exclude(state__in=FINAL_STATES).order_by("-created_at").first()
    if running is not None:
        raise BuildInProgress(
            f"“{gallery.title}” has a build that has not finished yet ({BuildState(running.state).label.lower()}: "
            f"build {running.pk}). Wait until it has finished (its build page shows it), then try again."
        )


def rebuild(gallery: Gallery, *, by: Actor = None, as_publisher: bool = False) -> Build:
    """Queue a new build of ``gallery`` from a stored upload; return it.

    ``as_publisher`` (the publisher asked, signed in as ``by`` or, with ``by=None``, through the
    management link): the latest upload with the gallery's current settings (edits included).
    It is approved from the start only if ``approval_for(by)`` vouches (trusted publisher,
    staff, ``GALLERY_AUTO_APPROVE``); else a moderator reviews it before it is served. The
    publisher's quotas apply (``QuotaExceeded``; an anonymous gallery's are its address's).

    Otherwise a moderator's rebuild (``by`` is the moderator, recorded in the audit log): the live
    build again, from its source and with its own settings, approved as ``Approval.REBUILD``
    (nothing in it was not approved before; a publisher's edits since are not taken). A gallery
    with no live build gets its newest build again, with that build's settings, waiting for review.

    Raises ``BuildInProgress`` (an ``UploadRejected``) while another build of the gallery has not
    finished, and ``ValueError`` if the gallery is deleted, has no build to take the source from,
    or the source's files were removed (rejection, takedown, deletion).
    """
    if gallery.is_deleted:
        raise ValueError(f"gallery {gallery.pk} is deleted")
    with transaction.atomic():
        Gallery.objects.select_for_update().filter(pk=gallery.pk).first()
        gallery.refresh_from_db(fields=["live_build"])
        check_no_build_running(gallery)
        latest = gallery.builds.order_by("-created_at").first()
        if as_publisher or gallery.live_build is None:
            source = latest
        else:
            source = gallery.live_build
        if source is None:
            raise ValueError(f"gallery {gallery.pk} has no upload to rebuild from")
        if source.files_deleted:
            raise ValueError(
                f"“{gallery.title}” has no stored upload any more (it was removed with the gallery's files); "
                "upload the database again."
            )
        if as_publisher:
            check_quota(QuotaSubject.of(gallery), lock=True)
            approval, settings_used = approval_for(by), bundled_settings(gallery)
        else:
            approval = Approval.REBUILD if source.is_approved else ""
            settings_used = dict(source.bundle_settings) or bundled_settings(gallery)
        build = queue_build(
            gallery, new_build_id(), source.source_key, source.source_sha256, source.source_bytes,
            bundle_settings=settings_used, approval=approval, by=by,
        )  # fmt: skip
        build.append_log(f"Rebuild of build {source.id}.")
        audit(AuditEvent.Action.REBUILD, gallery=gallery, build=build, by=by,
              details={"from_build": source.pk, "approved": bool(approval), "as_publisher": as_publisher})  # fmt: skip
        transaction.on_commit(lambda: enqueue(build), robust=True)
    return build


def publish_build(build: Build) -> bool:
    """Make ``build`` the gallery's live build unless a newer one already is; return whether it went live.

    Call it only after every bundle file is in storage. One ``UPDATE`` of ``Gallery.live_build``,
    under the gallery's row lock: builds finish in any order (retries, a slow worker), so an older
    build (``created_at``) finishing after a newer one went live leaves the newer one live and
    returns ``False`` (it stays ready, served at its pinned origin). Raises ``ValueError`` if the
    build is failed or cancelled, or not approved (as stored now, not as ``build`` remembers):
    only an approved build is ever live. The gallery's moderation state is unchanged: a pending
    or taken-down gallery stays unserved.
    """
    with transaction.atomic():
        # The gallery first, then the build: the order ``approve`` locks them in.
        live_id = (
            Gallery.objects.select_for_update().filter(pk=build.gallery_id).values_list("live_build", flat=True).first()
        )
        row = (
            Build.objects.select_for_update().filter(pk=build.pk).values_list("state", "created_at", "review").first()
        )
        state = row[0] if row else None
        if row is None or state in (BuildState.FAILED, BuildState.CANCELLED):
            raise ValueError(f"build {build.pk} is {state or 'gone'}; only a complete build can go live")
        if row[2] != BuildReview.APPROVED:
            raise ValueError(f"build {build.pk} is not approved; only an approved build can go live")
        newer_live = (
            Build.objects.filter(pk=live_id, created_at__gt=row[1]).exclude(pk=build.pk).exists() if live_id else False
        )
        if newer_live:
            logger.info("gallery %s keeps build %s live: build %s is older", build.gallery_id, live_id, build.pk)
            return False
        Gallery.objects.filter(pk=build.gallery_id).update(live_build=build, updated_at=timezone.now())
    logger.info("gallery %s now serves build %s", build.gallery_id, build.pk)
    return True


def finish_build(build: Build) -> bool:
    """Put a build whose bundle is complete live if it is approved; return whether it went live.

    Called by the worker once every file is stored. An approved build becomes the live build
    (``publish_build``) unless a newer one is live already (then it says so in its log);
    readers see it once the gallery is approved. A build waiting for review stays ready, not
    live and not served anywhere public, until a moderator approves it (``approve``). Writes
    the ``build_ready`` audit record (``details``: ``{"live": bool, "superseded": bool,
    "waits_for_review": bool}``).

    Raises ``ValueError`` (and removes the build's files) when the gallery was taken down or
    deleted, or the build rejected, while it ran; else as ``publish_build`` does.
    """
    build.refresh_from_db(fields=["review"])
    gallery_state = Gallery.objects.values_list("moderation_state", flat=True).get(pk=build.gallery_id)
    removed = gallery_state in (ModerationState.TAKEN_DOWN, ModerationState.DELETED)
    if removed or build.review == BuildReview.REJECTED:
        # Removed or rejected while this build ran: its files go the way of the others'.
        remove_build_files([(build.pk, build.source_key)])
        label = ModerationState(gallery_state).label.lower() if removed else "rejected"
        raise ValueError(f"the gallery was {label} during the build")
    waits = build.review != BuildReview.APPROVED
    live = False if waits else publish_build(build)
    if not waits and not live:
        build.append_log("A newer build of this gallery is already live, so this one was not made live.")
    audit(AuditEvent.Action.BUILD_READY, gallery=build.gallery_id, build=build,
          details={"live": live, "superseded": not waits and not live, "waits_for_review": waits})  # fmt: skip
    return live


def cancel(build: Build) -> bool:
    """Mark a build that has not finished as cancelled; return whether it was still running."""
    if build.state in FINAL_STATES:
        return False
    return build.set_state(BuildState.CANCELLED, "Cancelled by a moderator.")

def enqueue(build: Build) -> None:
    """Send ``build`` to the queue and record when (``Build.sent_at``).

    If the broker is unreachable the build stays queued, unsent, and its log says it will start
    by itself: the sweeper (``gallery.services.recovery.sweep_builds``) sends it once the broker answers.
    """
    try:
        queue.send_build(build.id)
    except queue.BROKER_ERRORS as exc:
        logger.warning("could not enqueue build %s (%s); the sweeper will send it", build.id, exc)
        build.append_log(
            f"The build queue could not be reached ({type(exc).__name__}); the build starts by itself once it is back."
        )
        return
    Build.objects.filter(pk=build.pk, sent_at__isnull=True).update(sent_at=timezone.now())


def mark_ready(build: Build, *, went_live: bool) -> None:
    """Finish ``build``'s log with where it stands, then mark it ``ready`` (``went_live``: ``finish_build``'s answer).

    The log's last line names the gallery's URL and why it is or is not public yet: the gallery
    waits for a moderator, this version does (the current one stays live), or a newer build is
    live (this one stays at its pinned origin). The log is complete before the state is final,
    so whoever sees "ready" sees the whole log. A build cancelled meanwhile stays cancelled, and
    its log says so.
    """
    gallery = Gallery.objects.get(pk=build.gallery_id)
    if went_live:
        waiting = "" if gallery.is_public else " (public once a moderator approves the gallery)"
    elif not build.is_approved and gallery.live_build_id is not None:
        waiting = " (this version goes live once a moderator approves it; the current one stays live until then)"
    elif not build.is_approved:
        waiting = " (public once a moderator approves this version)"
    else:
        waiting = f" (a newer build is live there; this one stays at {gallery.pinned_url(build.id)})"
    build.append_log(f"== Ready. Gallery URL: {gallery.url}{waiting}")
    if not build.set_state(BuildState.READY):
        build.refresh_from_db(fields=["state"])
        build.append_log(f"The build was {build.state} meanwhile.")


def table_name_for(build: Build) -> str:
    """The table a one-table upload (CSV, TSV, JSON) of ``build`` becomes, so URLs outlive new versions.

    The table of the gallery's newest earlier build that made exactly one table, if any (a new
    version of ``birds.csv`` uploaded as ``birds-2025.csv`` keeps the table ``birds``); else the
    gallery's database name, which comes from the first file's name (``birds``).
    """
    earlier = (
        Build.objects.filter(gallery_id=build.gallery_id, created_at__lt=build.created_at)
        .exclude(tables=[])
        .order_by("-created_at")
        .values_list("tables", flat=True)
        .first()
    )
    if earlier and len(earlier) == 1 and earlier[0].get("name"):
        return str(earlier[0]["name"])
    return Gallery.objects.values_list("database_name", flat=True).get(pk=build.gallery_id)
