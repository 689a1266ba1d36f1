"""Operations on galleries and builds: accept an upload, publish, moderate, rebuild.

Views, admin actions and the ``publish`` command all call these, so each rule
lives in one place. Errors meant for the publisher carry their message in
``args[0]``: ``UploadRejected`` (the upload itself is wrong) and
``StorageUnavailable`` (the store is down; nothing was saved).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from builder.catalog import (
    DATASETTE_VERSIONS,
    DEFAULT_DATASETTE_VERSION,
    UnknownPlugin,
    check_plugins,
)
from builder.metadata import InvalidMetadata, parse_metadata
from builder.sqlite_check import InvalidDatabase, check_header, format_megabytes
from builder.storage import StorageError
from gallery import queue
from gallery.models import (
    BUNDLED_SETTINGS,
    DESCRIPTION_MAX_LENGTH,
    FINAL_STATES,
    METADATA_TEXT_MAX_LENGTH,
    MODERATION_REASON_MAX_LENGTH,
    REPORT_DETAILS_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Approval,
    AuditEvent,
    Build,
    BuildReview,
    BuildState,
    Gallery,
    Publisher,
    Report,
    bundled_settings,
    database_name_for,
    hash_ip,
    is_trusted,
    new_build_id,
)
from gallery.storage import get_storage

logger = logging.getLogger(__name__)

#: File name endings accepted for an upload.
ALLOWED_EXTENSIONS: tuple[str, ...] = (".db", ".sqlite", ".sqlite3")
STORAGE_UNAVAILABLE_MESSAGE = "Storage is unavailable; your file was not saved. Try again in a few minutes."
_CHUNK = 1024 * 1024


class UploadRejected(ValueError):
    """The upload cannot be accepted. ``args[0]`` tells the publisher why and what to do."""


class StorageUnavailable(Exception):
    """The store failed while saving the upload; nothing was created. ``args[0]`` is user-facing."""


class UploadFile(Protocol):
    """What ``accept_upload`` reads: a Django ``UploadedFile`` or ``File``."""

    size: int | None

    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...
    def read(self, size: int = -1) -> bytes: ...
    def chunks(self, chunk_size: int | None = None) -> Iterable[bytes]: ...


def check_filename(filename: str) -> None:
    """Raise ``UploadRejected`` unless ``filename`` ends in .db, .sqlite or .sqlite3 (any case)."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        shown = f"“{suffix}”" if suffix else "no extension"
        raise UploadRejected(f"The file has {shown}; upload a SQLite database ending in .db, .sqlite or .sqlite3.")


def check_size(size_bytes: int) -> None:
    """Raise ``UploadRejected`` if ``size_bytes`` is 0 or above ``UPLOAD_MAX_BYTES``."""
    if size_bytes == 0:
        raise UploadRejected("The file is empty. Choose a SQLite database file (.db, .sqlite, .sqlite3).")
    if size_bytes > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected(
            f"The file is {format_megabytes(size_bytes)}, larger than the "
            f"{format_megabytes(settings.UPLOAD_MAX_BYTES)} limit. Remove tables or rows you do not need "
            "(then VACUUM) and upload it again."
        )


def check_upload(upload: UploadFile, filename: str) -> None:
    """Check an upload's name, size and SQLite header; raise ``UploadRejected`` with the first problem.

    The header check is ``builder.sqlite_check.check_header``: magic bytes, page size, journal-mode
    bytes and file size = page size × page count. Opening the file is left to the build.
    """
    check_filename(filename)
    size = upload.size if upload.size is not None else _measure(upload)
    check_size(size)
    upload.seek(0)
    try:
        # The whole 100-byte header and the size against it (builder.sqlite_check): a truncated,
        # renamed or mangled file is refused here, before anything is stored.
        check_header(upload, size_bytes=size)  # type: ignore[arg-type]
    except InvalidDatabase as exc:
        raise UploadRejected(exc.args[0]) from exc


def _measure(upload: UploadFile) -> int:
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    return size


def accept_upload(
    *,
    upload: UploadFile,
    filename: str,
    title: str,
    description: str = "",
    plugins: list[str],
    visibility: str = Gallery.Visibility.LISTED,
    datasette_version: str = DEFAULT_DATASETTE_VERSION,
    metadata_text: str = "",
    owner: object = None,
    uploader_ip: str = "",
    by_operator: bool = False,
) -> Build:
    """Store an uploaded SQLite database privately and queue its first build.

    Validates everything again (the form already did; the command did not):
    name, size, SQLite header, title, plugins, visibility, Datasette version,
    and ``metadata_text`` (YAML or JSON, see ``builder.metadata``).
    Streams ``upload`` to storage key ``uploads/<build-id>/source.db`` while
    hashing it (sha256), then creates the ``Gallery`` and its queued ``Build`` in
    one transaction and enqueues the build after commit, and writes the audit record.

    ``owner`` is the signed-in publisher (``None`` or ``AnonymousUser`` for an anonymous
    upload), whose quotas apply (``check_quota``: ``QuotaExceeded``, an ``UploadRejected``);
    an anonymous upload's quotas are those of its address (``uploader_ip``, stored only as
    ``hash_ip``). The gallery and its build start approved when ``approval_for`` vouches
    (``GALLERY_AUTO_APPROVE``, a staff or trusted owner, or ``by_operator``: the ``publish``
    command); else both are pending and a moderator reviews the build.

    Returns the new ``Build`` (``build.gallery`` is set). Raises
    ``UploadRejected`` for a bad upload and ``StorageUnavailable`` if the store
    fails; in both cases no row is created and nothing stays in storage.
    """
    title, plugins, metadata = clean_settings(
        title=title, description=description, plugins=plugins, visibility=visibility,
        datasette_version=datasette_version, metadata_text=metadata_text, database_name=database_name_for(filename),
    )  # fmt: skip
    check_upload(upload, filename)

    owner = owner if getattr(owner, "is_authenticated", False) else None
    ip_hash = hash_ip(uploader_ip)
    # An operator's upload counts against nobody's quota; anyone else's against the account's,
    # or the address's when signed out.
    quota = None if by_operator else QuotaSubject(owner, ip_hash)
    # Checked before the file is stored (a clear refusal, nothing to clean up), and again
    # under the publisher's row lock in the transaction below (two uploads at once).
    check_quota(quota, new_gallery=True, new_bytes=upload.size or 0)
    approval = approval_for(owner, by_operator=by_operator)
    approved = bool(approval)
    build_id = new_build_id()
    source_key = f"uploads/{build_id}/source.db"
    sha256, size = _store_upload(upload, source_key)
    try:
        with transaction.atomic():
            check_quota(quota, new_gallery=True, new_bytes=size, lock=True)
            gallery = Gallery.objects.create(
                title=title,
                description=description.strip(),
                visibility=visibility,
                owner=owner,
                uploader_ip_hash=ip_hash,
                moderation_state=(Gallery.ModerationState.APPROVED if approved else Gallery.ModerationState.PENDING),
                database_name=database_name_for(filename),
                plugins=plugins,
                metadata=metadata,
                datasette_version=datasette_version,
            )
            build = _queued_build(
                gallery, build_id, source_key, sha256, size, bundle_settings=bundled_settings(gallery),
                approval=approval, by=owner,
            )  # fmt: skip
            audit(
                AuditEvent.Action.UPLOAD, gallery=gallery, build=build, by=owner,
                actor_label="operator (publish command)" if by_operator else describe_actor(owner, ip_hash=ip_hash),
                details={"filename": PurePath(filename).name, "bytes": size, "sha256": sha256,
                         "plugins": plugins, "state": gallery.moderation_state},
            )  # fmt: skip
            transaction.on_commit(lambda: _enqueue(build), robust=True)
    except Exception:
        _forget_upload(source_key)
        raise
    logger.info(
        "accepted upload %s (%d bytes) as gallery %s, build %s",
        filename,
        size,
        gallery.id,
        build.id,
    )
    return build


def check_length(what: str, value: str, limit: int) -> None:
    """Raise ``UploadRejected`` if ``value`` is longer than ``limit`` characters, naming ``what``, its length and the limit."""
    if len(value) > limit:
        raise UploadRejected(f"The {what} has {len(value)} characters; shorten it to at most {limit} characters.")


def clean_settings(
    *,
    title: str,
    description: str = "",
    plugins: Iterable[str],
    visibility: str,
    datasette_version: str,
    metadata_text: str,
    database_name: str,
) -> tuple[str, list[str], dict[str, object]]:
    """Check a gallery's settings; return ``(title stripped, plugins sorted, metadata parsed)``.

    Title, description and metadata text are at most ``TITLE_MAX_LENGTH``,
    ``DESCRIPTION_MAX_LENGTH`` and ``METADATA_TEXT_MAX_LENGTH`` characters (the description
    counted stripped, as it is stored). ``metadata_text`` is YAML or JSON
    (``builder.metadata.parse_metadata``, checked against ``database_name`` and the plugins).
    Raises ``UploadRejected`` with the first problem.
    """
    title = title.strip()
    if not title:
        raise UploadRejected("Give the gallery a title.")
    check_length("title", title, TITLE_MAX_LENGTH)
    check_length("description", description.strip(), DESCRIPTION_MAX_LENGTH)
    check_length("metadata", metadata_text, METADATA_TEXT_MAX_LENGTH)
    try:
        plugins = check_plugins(list(plugins), datasette_version)
    except (UnknownPlugin, ValueError) as exc:
        raise UploadRejected(exc.args[0]) from exc
    if visibility not in Gallery.Visibility.values:
        raise UploadRejected(f"Visibility must be one of {', '.join(Gallery.Visibility.values)}.")
    if datasette_version not in DATASETTE_VERSIONS:
        raise UploadRejected(
            f"Datasette {datasette_version} is not offered; choose one of {', '.join(DATASETTE_VERSIONS)}."
        )
    try:
        metadata = parse_metadata(metadata_text, database_name=database_name, plugins=plugins)
    except InvalidMetadata as exc:
        raise UploadRejected(exc.args[0]) from exc
    return title, plugins, metadata


def _queued_build(
    gallery: Gallery,
    build_id: str,
    source_key: str,
    sha256: str,
    size: int,
    *,
    bundle_settings: dict[str, object],
    approval: str = "",
    by: object = None,
) -> Build:
    """Create the queued ``Build`` ``build_id`` of ``gallery`` from the upload stored at ``source_key``.

    ``bundle_settings`` is what it bakes in (``Build.bundle_settings``); with an ``approval`` (an
    ``Approval`` value) it is approved from the start, vouched for by ``by``; else it waits
    for a moderator's review.
    """
    user = by if getattr(by, "is_authenticated", False) else None
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


def approval_for(by: object, *, by_operator: bool = False) -> str:
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


def _store_upload(upload: UploadFile, key: str) -> tuple[str, int]:
    """Put ``upload`` at ``key``; return ``(sha256 hex, size in bytes)``. Raises ``StorageUnavailable``."""
    storage = get_storage()
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    temporary_path = getattr(upload, "temporary_file_path", None)
    try:
        if callable(temporary_path):
            # Django already spooled it to disk (FILE_UPLOAD_MAX_MEMORY_SIZE = 0): hash in place.
            path = Path(temporary_path())
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
            storage.put_file(key, path)
        else:
            with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, suffix=".db") as spool:
                for chunk in upload.chunks(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    spool.write(chunk)
                spool.flush()
                storage.put_file(key, Path(spool.name))
    except StorageError as exc:
        logger.error("could not store upload at %s: %s", key, exc)
        _forget_upload(key)
        raise StorageUnavailable(STORAGE_UNAVAILABLE_MESSAGE) from exc
    return digest.hexdigest(), size


def _forget_upload(key: str) -> None:
    """Best effort: remove whatever was stored under the upload's folder."""
    try:
        get_storage().delete_prefix(key.rsplit("/", 1)[0] + "/")
    except (StorageError, OSError) as exc:
        logger.warning("could not remove %s after a failed upload: %s", key, exc)


def _enqueue(build: Build) -> None:
    """Send ``build`` to the queue and record when (``Build.sent_at``).

    If the broker is unreachable the build stays queued, unsent, and its log says it will start
    by itself: the sweeper (``gallery.recovery.sweep_builds``) sends it once the broker answers.
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


# --- Moderation: the state machine, the audit log, removing files ------------------------------

State = Gallery.ModerationState

#: Moderation transitions a moderator (or an operator) may make: ``{from: {to, ...}}``. Deletion
#: (any state but deleted -> deleted) is the publisher's or an admin's, through ``delete_gallery``.
TRANSITIONS: dict[str, frozenset[str]] = {
    State.PENDING: frozenset({State.APPROVED, State.REJECTED, State.TAKEN_DOWN}),
    State.APPROVED: frozenset({State.REJECTED, State.TAKEN_DOWN}),
    State.REJECTED: frozenset({State.APPROVED, State.TAKEN_DOWN}),
    State.TAKEN_DOWN: frozenset(),
    State.DELETED: frozenset(),
}


class InvalidTransition(ValueError):
    """The gallery's moderation state does not allow the action. ``args[0]`` says why, for people."""


def describe_actor(user: object = None, *, ip_hash: str = "") -> str:
    """Who did something, in words for the audit log.

    A user -> ``"<email or username> (staff)"`` / ``"(moderator)"`` / ``""``; no user but an
    ``ip_hash`` -> ``"anonymous <first 8 hex>"``; neither -> ``"system"``.
    """
    if user is not None and getattr(user, "is_authenticated", False):
        name = getattr(user, "email", "") or getattr(user, "username", "") or f"user {user.pk}"  # type: ignore[attr-defined]
        if getattr(user, "is_superuser", False) or getattr(user, "is_staff", False):
            is_moderator = user.groups.filter(name=MODERATORS_GROUP).exists()  # type: ignore[attr-defined]
            return f"{name} ({'moderator' if is_moderator else 'staff'})"
        return name
    if ip_hash:
        return f"anonymous {ip_hash[:8]}"
    return "system"


#: The group whose staff members moderate (created by migration 0005).
MODERATORS_GROUP = "Moderators"


def audit(
    action: str,
    *,
    gallery: Gallery | str | None = None,
    build: Build | str | None = None,
    by: object = None,
    actor_label: str = "",
    reason: str = "",
    details: dict[str, object] | None = None,
) -> AuditEvent:
    """Append one record to the audit log and return it.

    ``action`` is an ``AuditEvent.Action``; ``gallery``/``build`` are rows or ids; ``by`` is
    the acting user (or ``None``); ``actor_label`` overrides the words for who acted
    (default ``describe_actor(by)``). Raises ``ValueError`` for an unknown action.
    """
    if action not in AuditEvent.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    user = by if getattr(by, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        action=action,
        gallery_id=getattr(gallery, "pk", gallery) or "",
        build_id=getattr(build, "pk", build) or "",
        actor=user,
        actor_label=actor_label or describe_actor(user),
        reason=reason,
        details=details or {},
    )


def _transition(
    gallery: Gallery,
    to: str,
    action: str,
    *,
    by: object,
    reason: str = "",
    allowed_from: Iterable[str] | None = None,
    build: Build | None = None,
) -> str:
    """Move ``gallery`` to state ``to`` under a row lock, write the audit record; return the old state.

    Raises ``InvalidTransition`` when ``TRANSITIONS`` (or ``allowed_from``) does not allow it.
    Must run inside a transaction.
    """
    current = Gallery.objects.select_for_update().values_list("moderation_state", flat=True).get(pk=gallery.pk)
    allowed = (
        set(allowed_from) if allowed_from is not None else {s for s, targets in TRANSITIONS.items() if to in targets}
    )
    if current not in allowed:
        raise InvalidTransition(
            f"“{gallery.title}” is {State(current).label.lower()}; it cannot be "
            f"{'deleted' if to == State.DELETED else State(to).label.lower()} from that state."
        )
    Gallery.objects.filter(pk=gallery.pk).update(
        moderation_state=to, moderation_reason=reason, updated_at=timezone.now()
    )
    gallery.moderation_state = to
    gallery.moderation_reason = reason
    audit(action, gallery=gallery, build=build, by=by, reason=reason, details={"from": current, "to": to})
    logger.info("gallery %s: %s -> %s", gallery.pk, current, to)
    return current


#: Audit actions that count as a moderator's decision on a gallery: reports older than the
#: latest one have been looked at.
DECISIONS = (AuditEvent.Action.APPROVE, AuditEvent.Action.REJECT, AuditEvent.Action.TAKE_DOWN)


def unreviewed_reports_filter(gallery_ref: str = "pk") -> Exists:
    """An ``Exists`` expression: the gallery (``OuterRef(gallery_ref)``) has reports newer than its
    latest moderator decision (``DECISIONS`` in the audit log), or any report if none was made."""
    last_decision = (
        AuditEvent.objects.filter(gallery_id=OuterRef(OuterRef(gallery_ref)), action__in=DECISIONS)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    return Exists(
        Report.objects.filter(gallery=OuterRef(gallery_ref)).filter(
            Q(created_at__gt=Subquery(last_decision)) | Q(~Exists(last_decision))
        )
    )


def has_unreviewed_reports(gallery: Gallery) -> bool:
    """Whether ``gallery`` has reports newer than a moderator's latest decision on it."""
    return Gallery.objects.filter(pk=gallery.pk).filter(unreviewed_reports_filter()).exists()


def build_to_review(gallery: Gallery) -> Build | None:
    """The build a moderator is shown, and approves, for ``gallery``; ``None`` if there is none.

    The newest ready build with its files that waits for review (``BuildQuerySet.reviewable``),
    unless the live build is newer (then that one was superseded unreviewed and is never
    served); failing that, the live build (what a moderator looks at for a hold or reports).
    For a pending gallery that is its newest upload; for an approved one a new version; for a
    rejected one the corrected version uploaded since (the rejected builds are ``rejected``).
    Reads ``gallery.builds.all()``, so a queryset that prefetched builds (the admin's queue)
    asks nothing more.
    """
    builds = list(gallery.builds.all())
    live = next((b for b in builds if b.pk == gallery.live_build_id), None)
    waiting = [
        b for b in builds
        if b.state == BuildState.READY and not b.files_deleted and b.review == BuildReview.PENDING
        and (live is None or b.created_at > live.created_at)
    ]  # fmt: skip
    return max(waiting, key=lambda b: b.created_at, default=live)


class NewerVersion(InvalidTransition):
    """A newer build became ready since the moderator's page was drawn; ``args[0]`` says so."""


def approve(gallery: Gallery, *, build: str, by: object = None, reason: str = "") -> None:
    """Approve build ``build`` (its id) of ``gallery``, the one the moderator reviewed, and serve it.

    ``build`` must be what ``build_to_review`` gives now: the moderation pages carry the id of
    the build they show (its preview, tables and data scan). A pending or rejected gallery
    becomes approved; an approved one gets its new version live, is released from a hold after
    reports, or has its reports counted as reviewed. The build is marked approved by ``by``
    (``Approval.MODERATOR``) and becomes the live build. No other build is approved: an older
    upload nobody reviewed, or a build still running, stays pending, never served.

    Raises ``NewerVersion`` (an ``InvalidTransition``) when ``build`` is not the build to review
    any more ("a newer version arrived"), ``InvalidTransition`` when there is nothing to approve
    (no ready build, a rejected gallery whose files were removed, or an approved gallery with no
    new version, hold or reports) or the state does not allow it.
    """
    with transaction.atomic():
        current = Gallery.objects.select_for_update().values_list("moderation_state", flat=True).get(pk=gallery.pk)
        gallery.refresh_from_db(fields=["live_build", "held_at"])
        shown = build_to_review(gallery)
        if shown is None:
            raise InvalidTransition(
                f"“{gallery.title}” has no version to approve: nothing finished building, or its files were "
                "removed when it was rejected. The publisher must upload a (corrected) version first."
            )
        if shown.pk != build:
            raise NewerVersion(
                f"A newer version of “{gallery.title}” arrived since this page was drawn (build {shown.pk}); "
                "review it (its preview, tables and data scan), then approve again."
            )
        new_version = shown.review == BuildReview.PENDING
        if current == State.APPROVED:
            held = gallery.held_at is not None
            reported = has_unreviewed_reports(gallery)
            if not held and not new_version and not reported:
                raise InvalidTransition(
                    f"“{gallery.title}” is already approved, with no new version or reports to review."
                )
            audit(AuditEvent.Action.APPROVE, gallery=gallery, build=shown, by=by, reason=reason,
                  details={"from": current, "to": current, "version": shown.pk if new_version else None,
                           "released_hold": held, "reports_reviewed": reported})  # fmt: skip
        else:
            _transition(gallery, State.APPROVED, AuditEvent.Action.APPROVE, by=by, reason=reason, build=shown)
        Gallery.objects.filter(pk=gallery.pk).update(held_at=None)
        gallery.held_at = None
        if new_version:
            user = by if getattr(by, "is_authenticated", False) else None
            Build.objects.filter(pk=shown.pk).update(
                review=BuildReview.APPROVED, approval=Approval.MODERATOR, reviewed_at=timezone.now(), reviewed_by=user
            )
        if gallery.live_build_id != shown.pk:
            Gallery.objects.filter(pk=gallery.pk).update(live_build=shown, updated_at=timezone.now())
            gallery.live_build = shown


def reject(gallery: Gallery, reason: str, *, by: object = None) -> None:
    """Reject ``gallery`` (pending or approved -> rejected) for a fixable ``reason``, shown to the publisher.

    It stops being served at once (readers' Service Workers are replaced by the kill switch),
    every build it has, finished or not, is ``rejected`` (never served again, previews
    included), and their files are removed from storage after commit. The publisher may
    upload a corrected version. Raises ``InvalidTransition`` from other states, ``ValueError``
    without a reason or with one over ``MODERATION_REASON_MAX_LENGTH`` characters.
    """
    _remove(
        gallery, State.REJECTED, AuditEvent.Action.REJECT, reason, by=by,
        subject=f"“{gallery.title}” was not published",
        body=f"A moderator rejected your gallery “{gallery.title}”:\n\n{{reason}}\n\n"
        "Fix it and upload a corrected version from My galleries; a moderator will look at it again.",
    )  # fmt: skip


def take_down(gallery: Gallery, reason: str, *, by: object = None) -> None:
    """Take ``gallery`` down for abuse (pending, approved or rejected -> taken_down); its origins,
    previews included, answer 410.

    Its builds' files are removed from storage after commit, and readers' Service Workers
    are replaced by the kill switch. Raises ``InvalidTransition`` from other states and
    ``ValueError`` without a reason or with one over ``MODERATION_REASON_MAX_LENGTH`` characters.
    """
    _remove(
        gallery, State.TAKEN_DOWN, AuditEvent.Action.TAKE_DOWN, reason, by=by,
        subject=f"“{gallery.title}” was taken down",
        body=f"A moderator took down your gallery “{gallery.title}”:\n\n{{reason}}\n\n"
        "Its addresses no longer serve it and its files were removed. Reply to this email to appeal.",
    )  # fmt: skip


def _remove(gallery: Gallery, to: str, action: str, reason: str, *, by: object, subject: str, body: str) -> None:
    """Move ``gallery`` to ``to`` for ``reason`` (required), stop serving it, remove its files
    after commit and email the publisher ``body`` (with ``{reason}`` filled in)."""
    reason = _required_reason(reason)
    with transaction.atomic():
        _transition(gallery, to, action, by=by, reason=reason)
        for unfinished in gallery.builds.exclude(state__in=FINAL_STATES):
            unfinished.set_state(BuildState.CANCELLED, f"Cancelled: the gallery was {State(to).label.lower()}.")
        user = by if getattr(by, "is_authenticated", False) else None
        # A build still running now is covered too: it finishes rejected and its files go (finish_build).
        gallery.builds.exclude(review=BuildReview.REJECTED).update(
            review=BuildReview.REJECTED, reviewed_at=timezone.now(), reviewed_by=user
        )
        _unpublish(gallery)
        _notify_publisher(gallery, subject, body.replace("{reason}", reason))


def delete_gallery(gallery: Gallery, *, by: object = None, reason: str = "") -> None:
    """Delete ``gallery``: it becomes a tombstone (state ``deleted``) and its files are removed.

    The row stays, so the id is never reused and its origins answer 410; reports and
    builds stay for the audit trail. Raises ``InvalidTransition`` if already deleted.
    """
    with transaction.atomic():
        _transition(
            gallery, State.DELETED, AuditEvent.Action.DELETE, by=by, reason=reason,
            allowed_from=set(State.values) - {State.DELETED},
        )  # fmt: skip
        _unpublish(gallery)


def hold_for_review(gallery: Gallery, reason: str, *, by: object = None) -> bool:
    """Stop serving an approved ``gallery`` until a moderator looks at it; return whether it was held now.

    Readers' reports do this (``record_report``). Unlike a takedown it removes nothing and can be
    undone: the gallery stays ``approved`` with ``held_at`` set, is not public (its origins answer
    404 and the kill-switch ``sw.js``), joins the moderation queue, and ``approve`` serves it
    again; ``reject`` or ``take_down`` end it. The publisher is emailed. Returns ``False`` if the
    gallery is not approved or already held.
    """
    with transaction.atomic():
        held = Gallery.objects.filter(pk=gallery.pk, moderation_state=State.APPROVED, held_at__isnull=True).update(
            held_at=timezone.now(), moderation_reason=reason, updated_at=timezone.now()
        )
        if not held:
            return False
        gallery.refresh_from_db(fields=["held_at", "moderation_reason"])
        audit(AuditEvent.Action.HOLD, gallery=gallery, by=by, reason=reason)
        _notify_publisher(
            gallery,
            f"“{gallery.title}” is held for review",
            f"Your gallery “{gallery.title}” is not shown while a moderator reviews it:\n\n{reason}\n\n"
            "Nothing was deleted. You will hear from us when the review is done.",
        )
    logger.info("gallery %s held for review", gallery.pk)
    return True


def trust_publisher(user: object, *, by: object = None) -> None:
    """Mark ``user``'s account trusted: their uploads are approved and new versions go live without review."""
    publisher, _ = Publisher.objects.get_or_create(user=user)
    if publisher.trusted:
        return
    Publisher.objects.filter(pk=publisher.pk).update(trusted=True, trusted_at=timezone.now())
    audit(AuditEvent.Action.TRUST, by=by, details={"publisher": describe_actor(user), "user_id": user.pk})  # type: ignore[attr-defined]


def _notify_publisher(gallery: Gallery, subject: str, body: str) -> None:
    """Email the gallery's owner after commit, through Django's email backend; anonymous uploads get none.

    A mail failure is logged, never raised: the moderation decision stands.
    """
    owner = gallery.owner
    if owner is None or not owner.email:
        return
    page = settings.APP_URL + "/mine/"

    def send() -> None:
        try:
            send_mail(subject, f"{body}\n\nMy galleries: {page}\n", None, [owner.email])
        except Exception:
            logger.exception("could not email the publisher of %s", gallery.pk)

    transaction.on_commit(send)


def _required_reason(reason: str) -> str:
    """``reason`` stripped. Raises ``ValueError`` if it is empty, ``UploadRejected`` (a ``ValueError``) if it
    is over ``MODERATION_REASON_MAX_LENGTH`` characters."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("Give a reason: the publisher reads it.")
    check_length("reason", reason, MODERATION_REASON_MAX_LENGTH)
    return reason


def _unpublish(gallery: Gallery) -> None:
    """Stop serving ``gallery`` and, after commit, remove every build's bundle and upload from storage."""
    Gallery.objects.filter(pk=gallery.pk).update(live_build=None, held_at=None)
    gallery.live_build = None
    gallery.held_at = None
    build_ids = list(gallery.builds.filter(files_deleted=False).values_list("pk", "source_key"))
    transaction.on_commit(lambda: remove_build_files(build_ids), robust=True)


def files_left_behind() -> list[tuple[str, str]]:
    """``(build id, source_key)`` of builds whose files should be gone but are still marked stored.

    That happens when storage failed during a removal (``remove_build_files`` logs it). They are
    every build of a taken-down or deleted gallery, and every ``rejected`` build (a corrected
    version uploaded since a rejection is pending, and stays).
    """
    gone = Q(gallery__moderation_state__in=(State.TAKEN_DOWN, State.DELETED)) | Q(review=BuildReview.REJECTED)
    return list(Build.objects.filter(gone, files_deleted=False).values_list("pk", "source_key"))


def remove_build_files(builds: Iterable[tuple[str, str]]) -> list[str]:
    """Delete ``builds/<id>/`` and the upload's folder for each ``(build id, source_key)``; return the ids done.

    Shared ``runtime/`` and ``wheels/`` keys stay. Several builds may share one upload (rebuilds):
    it stays while a build outside ``builds`` that still has its files uses it (garbage collection
    removes old builds of a gallery whose newer rebuilds stay). A build whose files could not be
    removed (storage outage) keeps ``files_deleted = False`` and is logged; it is not served
    either way, since the gallery is no longer public or the build no longer live.
    """
    builds = list(builds)
    batch = [build_id for build_id, _ in builds]
    storage = get_storage()
    done = []
    for build_id, source_key in builds:
        upload_needed = Build.objects.filter(source_key=source_key, files_deleted=False).exclude(pk__in=batch).exists()
        try:
            storage.delete_prefix(f"builds/{build_id}/")
            if not upload_needed:
                storage.delete_prefix(source_key.rsplit("/", 1)[0] + "/")
        except (StorageError, OSError) as exc:
            logger.error("could not remove the files of build %s: %s", build_id, exc)
            continue
        done.append(build_id)
    Build.objects.filter(pk__in=done).update(files_deleted=True)
    return done


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


def rebuild(gallery: Gallery, *, by: object = None, as_publisher: bool = False) -> Build:
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
        build = _queued_build(
            gallery, new_build_id(), source.source_key, source.source_sha256, source.source_bytes,
            bundle_settings=settings_used, approval=approval, by=by,
        )  # fmt: skip
        build.append_log(f"Rebuild of build {source.id}.")
        audit(AuditEvent.Action.REBUILD, gallery=gallery, build=build, by=by,
              details={"from_build": source.pk, "approved": bool(approval), "as_publisher": as_publisher})  # fmt: skip
        transaction.on_commit(lambda: _enqueue(build), robust=True)
    return build


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
    removed = gallery_state in (State.TAKEN_DOWN, State.DELETED)
    if removed or build.review == BuildReview.REJECTED:
        # Removed or rejected while this build ran: its files go the way of the others'.
        remove_build_files([(build.pk, build.source_key)])
        label = State(gallery_state).label.lower() if removed else "rejected"
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


# --- Reports from readers ----------------------------------------------------------------------


#: Prefix length of the IPv6 network that counts as one reporter: an IPv4 address is one subscriber
#: at most, but an IPv6 subscriber is given a whole /64 and may pick any address in it.
REPORTER_IPV6_PREFIX_LENGTH = 64


def reporter_key_for(ip: str) -> str:
    """The key that tells reporters apart (64 hex): ``hash_ip`` of the network ``ip`` belongs to.

    An IPv4 address (also written IPv4-mapped, ``::ffff:a.b.c.d``) is its own key, an IPv6
    address counts as its /64 (``REPORTER_IPV6_PREFIX_LENGTH``): whatever the account signed in,
    so one person with several accounts, or several addresses of one IPv6 network, is one
    reporter. ``ip`` as ``ratelimits.client_ip`` gives it; ``""`` -> ``""``, and a text that
    is not an address is hashed as it is. The address itself is never stored.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return hash_ip(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        return hash_ip(str(address))
    return hash_ip(str(ipaddress.ip_network((address, REPORTER_IPV6_PREFIX_LENGTH), strict=False)))


def _reports_counting_toward_a_hold(gallery: Gallery) -> QuerySet[Report]:
    """``gallery``'s reports that count toward a hold: about harm (``Report.HOLD_REASONS``) and
    made after its latest moderator decision (``DECISIONS``), so a released hold starts the count again."""
    reports = gallery.reports.filter(reason__in=Report.HOLD_REASONS)
    last_decision = (
        AuditEvent.objects.filter(gallery_id=gallery.pk, action__in=DECISIONS)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return reports if last_decision is None else reports.filter(created_at__gt=last_decision)


def record_report(
    gallery: Gallery,
    *,
    reason: str,
    details: str,
    email: str,
    reporter_key: str,
    page_url: str = "",
    by: object = None,
) -> Report:
    """Record a reader's report of ``gallery`` (a ``Report`` and a ``report`` audit record) and return it.

    ``reason`` is a ``Report.Reason`` value; ``email`` optional (``""``), for the moderators'
    reply; ``reporter_key`` from ``reporter_key_for``; ``page_url`` the gallery page reported
    from (``""`` if unknown); ``by`` the signed-in reader or ``None``. Every report puts the
    gallery in the moderation queue (``unreviewed_reports_filter``). Once
    ``settings.REPORTS_TAKEDOWN_THRESHOLD`` distinct reporter keys (0: never) have reported an
    approved gallery for a reason about harm (``Report.HOLD_REASONS``) since the latest moderator
    decision on it (``DECISIONS``), it is held for review with ``hold_for_review`` (as the
    system): not served, nothing removed, in the queue until a moderator decides.
    Raises ``ValueError`` for an unknown reason or details over ``REPORT_DETAILS_MAX_LENGTH`` characters.
    """
    if reason not in Report.Reason.values:
        raise ValueError(f"unknown report reason {reason!r}; choose one of {', '.join(Report.Reason.values)}")
    check_length("report", details, REPORT_DETAILS_MAX_LENGTH)
    threshold = settings.REPORTS_TAKEDOWN_THRESHOLD
    with transaction.atomic():
        # The gallery row lock serialises its reports, so the report that reaches the threshold
        # sees every earlier one and exactly one of them holds the gallery.
        state = Gallery.objects.select_for_update().values_list("moderation_state", flat=True).get(pk=gallery.pk)
        report = Report.objects.create(
            gallery=gallery, reason=reason, details=details, email=email, reporter_key=reporter_key, page_url=page_url
        )
        user = by if getattr(by, "is_authenticated", False) else None
        audit(
            AuditEvent.Action.REPORT, gallery=gallery, by=user,
            actor_label=describe_actor(user, ip_hash=reporter_key), reason=Report.Reason(reason).label,
            details={"report": report.pk, "reason": reason, "page_url": page_url},
        )  # fmt: skip
        if threshold and state == State.APPROVED and reason in Report.HOLD_REASONS:
            # order_by(): the model's ordering would otherwise join the DISTINCT.
            reporters = _reports_counting_toward_a_hold(gallery).order_by().values("reporter_key").distinct().count()
            if reporters >= threshold:
                hold_for_review(
                    gallery,
                    f"Held for review automatically: {reporters} readers reported it "
                    f"(REPORTS_TAKEDOWN_THRESHOLD is {threshold}).",
                )
    return report


# --- Publishers: quotas, new versions, settings, management links ---------------------------


class QuotaExceeded(UploadRejected):
    """A publisher's quota (``PUBLISHER_MAX_*`` settings) would be exceeded; ``args[0]`` says which and what to do."""


class ClaimRefused(ValueError):
    """A gallery cannot be claimed: wrong or stale management token, already owned, or deleted."""


@dataclass(frozen=True)
class QuotaSubject:
    """Whose quotas an upload or build counts against: an account (``owner``), or, for galleries
    published without one, the uploader's address (``ip_hash``, from ``hash_ip``)."""

    owner: object = None
    ip_hash: str = ""

    @classmethod
    def of(cls, gallery: Gallery) -> QuotaSubject:
        """The subject ``gallery`` counts against: its owner, or its uploader's address if it has none."""
        if gallery.owner_id is not None:
            return cls(owner=gallery.owner)
        return cls(ip_hash=gallery.uploader_ip_hash)

    @property
    def anonymous(self) -> bool:
        """Whether this is an address, not an account."""
        return not getattr(self.owner, "is_authenticated", False)

    def galleries(self) -> QuerySet[Gallery]:
        """Its galleries, deleted ones left out (none for an unknown address)."""
        if not self.anonymous:
            mine = Gallery.objects.filter(owner=self.owner)
        elif self.ip_hash:
            mine = Gallery.objects.filter(owner__isnull=True, uploader_ip_hash=self.ip_hash)
        else:
            mine = Gallery.objects.none()
        return mine.exclude(moderation_state=State.DELETED)

    def lock(self) -> None:
        """Inside a transaction, serialise this subject's quota checks: the account's row lock, or
        for an address a PostgreSQL advisory lock on its hash (SQLite locks the whole database on write)."""
        if not self.anonymous:
            get_user_model().objects.select_for_update().filter(pk=self.owner.pk).first()  # type: ignore[attr-defined]
        elif self.ip_hash and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["glasshouse.quota:" + self.ip_hash])


def stored_bytes(subject: object) -> int:
    """Bytes ``subject``'s galleries keep in storage: each stored upload once (rebuilds share it) plus every stored bundle.

    ``subject`` is a ``QuotaSubject`` or a user. Deleted galleries and builds whose files were
    removed do not count.
    """
    subject = subject if isinstance(subject, QuotaSubject) else QuotaSubject(owner=subject)
    rows = Build.objects.filter(gallery__in=subject.galleries(), files_deleted=False).values_list(
        "source_key", "source_bytes", "bundle_bytes"
    )
    uploads: dict[str, int] = {}
    bundles = 0
    for source_key, source_bytes, bundle_bytes in rows:
        uploads[source_key] = source_bytes
        bundles += bundle_bytes or 0
    return sum(uploads.values()) + bundles


def check_quota(
    subject: QuotaSubject | None,
    *,
    new_gallery: bool = False,
    new_bytes: int = 0,
    new_build: bool = True,
    lock: bool = False,
) -> None:
    """Raise ``QuotaExceeded`` if ``subject`` (an account or an address: ``QuotaSubject``) may not add what is asked.

    With ``new_build`` the concurrent builds (``PUBLISHER_MAX_CONCURRENT_BUILDS``, queued or running),
    with ``new_gallery`` the number of galleries (``PUBLISHER_MAX_GALLERIES``, deleted ones
    not counted), and with ``new_bytes`` (an upload's size) the stored bytes
    (``PUBLISHER_MAX_STORED_BYTES``, ``stored_bytes``). Galleries published without an account
    count against their uploader's address. ``subject`` ``None`` (the operator), or an address
    that is unknown: no quotas. ``lock=True`` (inside a transaction) first takes
    ``QuotaSubject.lock``, so two requests at once are counted one after the other.
    """
    if subject is None or (subject.anonymous and not subject.ip_hash):
        return
    if lock:
        subject.lock()
    you = "Your address (galleries published without an account)" if subject.anonymous else "You"
    galleries = subject.galleries()
    if new_gallery:
        count = galleries.count()
        if count >= settings.PUBLISHER_MAX_GALLERIES:
            raise QuotaExceeded(
                f"{you} {'has' if subject.anonymous else 'have'} {count} galleries, the most one publisher may keep "
                f"({settings.PUBLISHER_MAX_GALLERIES}). Delete one you no longer need on My galleries, or upload a "
                "new version of an existing one."
            )
    running = Build.objects.filter(gallery__in=galleries).exclude(state__in=FINAL_STATES).count() if new_build else 0
    if new_build and running >= settings.PUBLISHER_MAX_CONCURRENT_BUILDS:
        raise QuotaExceeded(
            f"{you} already {'has' if subject.anonymous else 'have'} {running} builds queued or running, the most one "
            f"publisher may have at once ({settings.PUBLISHER_MAX_CONCURRENT_BUILDS}). Wait until one has finished "
            "(My galleries shows them), then try again."
        )
    if new_bytes:
        stored = stored_bytes(subject)
        limit = settings.PUBLISHER_MAX_STORED_BYTES
        if stored + new_bytes > limit:
            raise QuotaExceeded(
                f"This file ({format_megabytes(new_bytes)}) would bring the data your galleries keep here to "
                f"{format_megabytes(stored + new_bytes)}, over your {format_megabytes(limit)} quota. Delete galleries "
                "you no longer need on My galleries, or upload a smaller file."
            )


def _changeable(gallery: Gallery) -> None:
    """Raise ``UploadRejected`` if the publisher may no longer change ``gallery`` (taken down or deleted)."""
    if gallery.moderation_state == State.TAKEN_DOWN:
        raise UploadRejected(
            f"“{gallery.title}” was taken down by a moderator{': ' + gallery.moderation_reason if gallery.moderation_reason else ''}; "
            "it cannot be changed. Write to the moderators if you think this is a mistake."
        )
    if gallery.is_deleted:
        raise UploadRejected(f"“{gallery.title}” was deleted; publish the database as a new gallery.")


def upload_new_version(gallery: Gallery, *, upload: UploadFile, filename: str, by: object = None) -> Build:
    """Store a new database file for ``gallery`` and queue a build of it; return the build.

    ``by`` is the signed-in publisher, or ``None`` for the holder of the management link.
    The gallery keeps its database name (its URLs stay the same); the build takes the
    gallery's current settings. The live build stays live while the new one builds. The new
    one is approved from the start only if ``approval_for(by)`` vouches (a trusted publisher,
    staff, ``GALLERY_AUTO_APPROVE``), and then replaces the live build once ready; otherwise it
    waits for a moderator, who approves exactly it (``approve``). A rejected gallery's new
    version is what a moderator approves on appeal.

    Raises ``UploadRejected`` for a bad file or a gallery taken down or deleted,
    ``BuildInProgress`` while another build of the gallery has not finished, ``QuotaExceeded``
    over the publisher's quotas (``check_quota``; an anonymous gallery's are its uploader
    address's), ``StorageUnavailable`` if the store fails; then no row is created and nothing
    stays in storage.
    """
    _changeable(gallery)
    check_upload(upload, filename)
    check_no_build_running(gallery)
    quota = QuotaSubject.of(gallery)
    check_quota(quota, new_bytes=upload.size or 0)
    build_id = new_build_id()
    source_key = f"uploads/{build_id}/source.db"
    sha256, size = _store_upload(upload, source_key)
    try:
        with transaction.atomic():
            Gallery.objects.select_for_update().filter(pk=gallery.pk).first()
            check_no_build_running(gallery)
            check_quota(quota, new_bytes=size, lock=True)
            approval = approval_for(by)
            build = _queued_build(
                gallery, build_id, source_key, sha256, size, bundle_settings=bundled_settings(gallery),
                approval=approval, by=by,
            )  # fmt: skip
            build.append_log(f"New version of “{gallery.title}” uploaded ({format_megabytes(size)}).")
            audit(
                AuditEvent.Action.NEW_VERSION, gallery=gallery, build=build, by=by,
                actor_label="" if by is not None else "holder of the management link",
                details={"filename": PurePath(filename).name, "bytes": size, "sha256": sha256,
                         "approved": bool(approval)},
            )  # fmt: skip
            transaction.on_commit(lambda: _enqueue(build), robust=True)
    except Exception:
        _forget_upload(source_key)
        raise
    return build


def update_gallery(
    gallery: Gallery,
    *,
    title: str,
    description: str,
    visibility: str,
    plugins: Iterable[str],
    metadata_text: str,
    datasette_version: str | None = None,
    by: object = None,
) -> bool:
    """Change ``gallery``'s settings; return whether a rebuild is needed to apply them.

    Visibility applies at once. ``BUNDLED_SETTINGS`` (title, description, plugins, metadata,
    Datasette version) are the publisher's draft: the publisher's pages show them, but public
    pages and the gallery itself keep showing the live build's own copy (``Build.bundle_settings``)
    until a build made with them is approved, so a change to any of those returns ``True`` (the
    publisher should rebuild; that build waits for review unless ``approval_for`` vouches).
    ``datasette_version`` ``None`` keeps the current one. Raises ``UploadRejected`` for bad
    values (``clean_settings``) or a gallery taken down or deleted. Writes an ``edit``
    audit record with the changed fields.
    """
    _changeable(gallery)
    datasette_version = datasette_version or gallery.datasette_version
    title, plugins_list, metadata = clean_settings(
        title=title, description=description, plugins=plugins, visibility=visibility,
        datasette_version=datasette_version, metadata_text=metadata_text, database_name=gallery.database_name,
    )  # fmt: skip
    new = {
        "title": title,
        "description": description.strip(),
        "visibility": visibility,
        "plugins": plugins_list,
        "metadata": metadata,
        "datasette_version": datasette_version,
    }
    changed = sorted(field for field, value in new.items() if getattr(gallery, field) != value)
    if not changed:
        return False
    with transaction.atomic():
        Gallery.objects.filter(pk=gallery.pk).update(**new, updated_at=timezone.now())
        for field, value in new.items():
            setattr(gallery, field, value)
        audit(
            AuditEvent.Action.EDIT, gallery=gallery, by=by,
            actor_label="" if by is not None else "holder of the management link",
            details={"changed": changed},
        )  # fmt: skip
    return any(field in BUNDLED_SETTINGS for field in changed)


def management_token_hash(token: str) -> str:
    """The sha256 of a management token, 64 lowercase hex digits: what ``Gallery.management_key_hash``
    stores and what a browser session keeps (``gallery.publisher``) instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_management_token(gallery: Gallery) -> str:
    """Give ``gallery`` a new private management token and return it (43 URL-safe characters).

    Only its sha256 is stored (``Gallery.management_key_hash``); an earlier token stops
    working. The token is shown to the uploader once, in ``/manage/<gallery-id>/<token>/``;
    the caller must keep no copy of it (sessions hold ``management_token_hash``).
    """
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Gallery.objects.filter(pk=gallery.pk).update(management_key_hash=management_token_hash(token))
        gallery.management_key_hash = management_token_hash(token)
        audit(AuditEvent.Action.EDIT, gallery=gallery, details={"management_link": "issued"})
    return token


def management_hash_matches(gallery: Gallery, token_hash: str) -> bool:
    """Whether ``token_hash`` (``management_token_hash`` of a token) is that of ``gallery``'s current
    management token; a constant-time comparison. A gallery without a token (claimed, or never
    given one) matches nothing."""
    return bool(token_hash and gallery.management_key_hash) and hmac.compare_digest(
        token_hash.encode(), gallery.management_key_hash.encode()
    )


def management_token_matches(gallery: Gallery, token: str) -> bool:
    """Whether ``token`` is ``gallery``'s current management token (constant-time comparison)."""
    return bool(token) and management_hash_matches(gallery, management_token_hash(token))


def claim_gallery(gallery: Gallery, user: object, token_hash: str, *, how: str = "") -> None:
    """Make ``user`` the owner of the anonymously uploaded ``gallery``.

    ``token_hash`` is ``management_token_hash`` of the gallery's current management token (a
    browser session holds only the hash). ``how`` goes into the audit record's details
    (``{"how": how}``), e.g. ``"confirmed"`` (the button) or ``"uploaded in this session"``.
    The management link stops working (the hash is cleared): from then on the gallery is
    managed from the account. Raises ``ClaimRefused`` if the hash does not match, the
    gallery has an owner or is deleted, and ``QuotaExceeded`` over the user's gallery quota.
    """
    with transaction.atomic():
        locked = Gallery.objects.select_for_update().get(pk=gallery.pk)
        if locked.owner_id is not None or locked.is_deleted or not management_hash_matches(locked, token_hash):
            raise ClaimRefused(f"gallery {gallery.pk} cannot be claimed with this link")
        check_quota(QuotaSubject(owner=user), new_gallery=True, new_build=False, lock=True)
        Gallery.objects.filter(pk=gallery.pk).update(owner=user, management_key_hash="", updated_at=timezone.now())
        gallery.owner = user  # type: ignore[assignment]
        gallery.management_key_hash = ""
        audit(AuditEvent.Action.CLAIM, gallery=gallery, by=user, details={"how": how} if how else None)
