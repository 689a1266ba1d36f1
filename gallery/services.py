"""Operations on galleries and builds: accept an upload, publish, moderate, rebuild.

Views, admin actions and the ``publish`` command all call these, so each rule
lives in one place. Errors meant for the publisher carry their message in
``args[0]``: ``UploadRejected`` (the upload itself is wrong) and
``StorageUnavailable`` (the store is down; nothing was saved).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
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
    DESCRIPTION_MAX_LENGTH,
    FINAL_STATES,
    METADATA_TEXT_MAX_LENGTH,
    MODERATION_REASON_MAX_LENGTH,
    REPORT_DETAILS_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    AuditEvent,
    Build,
    BuildState,
    Gallery,
    Publisher,
    Report,
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
    ``uploader_ip`` the client address (stored only as ``hash_ip``). The gallery
    starts approved when ``GALLERY_AUTO_APPROVE`` is set, the owner is staff or trusted
    (``is_trusted``), or ``by_operator`` (the ``publish`` command); else pending.

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
    # Checked before the file is stored (a clear refusal, nothing to clean up), and again
    # under the publisher's row lock in the transaction below (two uploads at once).
    check_quota(owner, new_gallery=True, new_bytes=upload.size or 0)
    approved = settings.GALLERY_AUTO_APPROVE or by_operator or is_trusted(owner)
    ip_hash = hash_ip(uploader_ip)
    build_id = new_build_id()
    source_key = f"uploads/{build_id}/source.db"
    sha256, size = _store_upload(upload, source_key)
    try:
        with transaction.atomic():
            check_quota(owner, new_gallery=True, new_bytes=size, lock=True)
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
            build = _queued_build(gallery, build_id, source_key, sha256, size)
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
    gallery: Gallery, build_id: str, source_key: str, sha256: str, size: int, *, needs_review: bool = False
) -> Build:
    """Create the queued ``Build`` ``build_id`` of ``gallery`` from the upload stored at ``source_key``."""
    return Build.objects.create(
        id=build_id,
        gallery=gallery,
        state=BuildState.QUEUED,
        source_key=source_key,
        source_sha256=sha256,
        source_bytes=size,
        needs_review=needs_review,
    )


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
    build is failed or cancelled (as stored now, not as ``build`` remembers). Moderation is
    unchanged: a pending or taken-down gallery stays unserved.
    """
    with transaction.atomic():
        # The gallery first, then the build: the order ``approve`` locks them in.
        live_id = (
            Gallery.objects.select_for_update().filter(pk=build.gallery_id).values_list("live_build", flat=True).first()
        )
        row = Build.objects.select_for_update().filter(pk=build.pk).values_list("state", "created_at").first()
        state = row[0] if row else None
        if row is None or state in (BuildState.FAILED, BuildState.CANCELLED):
            raise ValueError(f"build {build.pk} is {state or 'gone'}; only a complete build can go live")
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
    State.PENDING: frozenset({State.APPROVED, State.REJECTED}),
    State.APPROVED: frozenset({State.REJECTED, State.TAKEN_DOWN}),
    State.REJECTED: frozenset({State.APPROVED}),
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
    gallery: Gallery, to: str, action: str, *, by: object, reason: str = "", allowed_from: Iterable[str] | None = None
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
    audit(action, gallery=gallery, by=by, reason=reason, details={"from": current, "to": to})
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
    """The build a moderator is asked to approve: the newest ready build with its files, or ``None``.

    For a pending gallery it is its live build (or a newer one); for an approved gallery a
    newer version waiting for review (``needs_review``); for a rejected gallery the
    corrected version the publisher uploaded since.
    """
    # Over ``gallery.builds.all()``, so a queryset that prefetched builds (the admin's queue) asks nothing more.
    ready = [b for b in gallery.builds.all() if b.state == BuildState.READY and not b.files_deleted]
    return max(ready, key=lambda b: b.created_at, default=None)


def approve(gallery: Gallery, *, by: object = None, reason: str = "") -> None:
    """Approve ``gallery`` (pending or rejected -> approved), its new version, or release a hold.

    The newest ready build (``build_to_review``) becomes the live build and every build's
    ``needs_review`` is cleared. An approved gallery with a version waiting for review stays
    approved and gets that version live; one held for review after reports is served again; one
    with reports newer than the last decision stays up, the reports counted as reviewed.
    Raises ``InvalidTransition`` from any other state, and for a rejected gallery with no ready
    build left (its files were removed: the publisher must upload a corrected version first).
    """
    with transaction.atomic():
        current = Gallery.objects.select_for_update().values_list("moderation_state", flat=True).get(pk=gallery.pk)
        candidate = build_to_review(gallery)
        if current == State.REJECTED and candidate is None:
            raise InvalidTransition(
                f"“{gallery.title}” has no version to approve: its files were removed when it was rejected. "
                "The publisher must upload a corrected version first."
            )
        if current == State.APPROVED:
            held = Gallery.objects.filter(pk=gallery.pk, held_at__isnull=False).exists()
            new_version = candidate is not None and candidate.needs_review
            reported = has_unreviewed_reports(gallery)
            if not held and not new_version and not reported:
                raise InvalidTransition(
                    f"“{gallery.title}” is already approved, with no new version or reports to review."
                )
            audit(AuditEvent.Action.APPROVE, gallery=gallery, build=candidate, by=by, reason=reason,
                  details={"from": current, "to": current, "version": candidate.pk if new_version else None,
                           "released_hold": held, "reports_reviewed": reported})  # fmt: skip
            if not new_version:
                candidate = None  # a released hold keeps the live build
        else:
            _transition(gallery, State.APPROVED, AuditEvent.Action.APPROVE, by=by, reason=reason)
        Gallery.objects.filter(pk=gallery.pk).update(held_at=None)
        gallery.held_at = None
        gallery.builds.filter(needs_review=True).update(needs_review=False)
        if candidate is not None:
            Gallery.objects.filter(pk=gallery.pk).update(live_build=candidate)
            gallery.live_build = candidate


def reject(gallery: Gallery, reason: str, *, by: object = None) -> None:
    """Reject ``gallery`` (pending or approved -> rejected) for a fixable ``reason``, shown to the publisher.

    It stops being served at once (readers' Service Workers are replaced by the kill switch),
    and its builds' files are removed from storage after commit. The publisher may upload a
    corrected version. Raises ``InvalidTransition`` from other states, ``ValueError`` without a reason
    or with one over ``MODERATION_REASON_MAX_LENGTH`` characters.
    """
    _remove(
        gallery, State.REJECTED, AuditEvent.Action.REJECT, reason, by=by,
        subject=f"“{gallery.title}” was not published",
        body=f"A moderator rejected your gallery “{gallery.title}”:\n\n{{reason}}\n\n"
        "Fix it and upload a corrected version from My galleries; a moderator will look at it again.",
    )  # fmt: skip


def take_down(gallery: Gallery, reason: str, *, by: object = None) -> None:
    """Take ``gallery`` down for abuse (approved -> taken_down); its origins answer 410.

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
    every build of a taken-down or deleted gallery, and the builds of a rejected gallery made
    before its latest rejection (a corrected version uploaded since must stay).
    """
    stored = Build.objects.filter(files_deleted=False)
    gone = stored.filter(gallery__moderation_state__in=(State.TAKEN_DOWN, State.DELETED))
    left = list(gone.values_list("pk", "source_key"))
    for gallery_id in Gallery.objects.filter(moderation_state=State.REJECTED).values_list("pk", flat=True):
        rejected_at = (
            AuditEvent.objects.filter(gallery_id=gallery_id, action=AuditEvent.Action.REJECT)
            .order_by("-created_at").values_list("created_at", flat=True).first()
        )  # fmt: skip
        if rejected_at is not None:
            left += stored.filter(gallery_id=gallery_id, created_at__lte=rejected_at).values_list("pk", "source_key")
    return left


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


def rebuild(gallery: Gallery, *, by: object = None, as_publisher: bool = False) -> Build:
    """Queue a new build of ``gallery`` from its stored upload; return it.

    The new build reads the same ``source_key`` as the gallery's latest build (the
    upload is stored once). A moderator's or the system's rebuild goes live when ready. With
    ``as_publisher`` (the publisher asked, signed in as ``by`` or, with ``by=None``, through
    the management link) the owner's quotas apply (``QuotaExceeded``) and the build waits
    for review as ``publisher_needs_review`` says. Raises ``ValueError`` if the gallery has
    no build to take the source from or its files were removed (rejection, takedown,
    deletion), or if it is deleted.
    """
    if gallery.is_deleted:
        raise ValueError(f"gallery {gallery.pk} is deleted")
    latest = gallery.builds.order_by("-created_at").first()
    if latest is None:
        raise ValueError(f"gallery {gallery.pk} has no upload to rebuild from")
    if latest.files_deleted:
        raise ValueError(
            f"“{gallery.title}” has no stored upload any more (it was removed with the gallery's files); "
            "upload the database again."
        )
    with transaction.atomic():
        if as_publisher:
            check_quota(gallery.owner, lock=True)
        build = Build.objects.create(
            gallery=gallery,
            state=BuildState.QUEUED,
            source_key=latest.source_key,
            source_sha256=latest.source_sha256,
            source_bytes=latest.source_bytes,
            needs_review=publisher_needs_review(gallery, by) if as_publisher else False,
        )
        build.append_log(f"Rebuild of build {latest.id}.")
        audit(AuditEvent.Action.REBUILD, gallery=gallery, build=build, by=by, details={"from_build": latest.pk})
        transaction.on_commit(lambda: _enqueue(build), robust=True)
    return build


def finish_build(build: Build) -> bool:
    """Put a build whose bundle is complete live, unless it waits for review; return whether it went live.

    Called by the worker once every file is stored. A build with ``needs_review`` of a
    gallery that is approved stays ready but not live until a moderator approves it
    (``approve``); any other build becomes the live build (``publish_build``), which
    readers see only once the gallery is approved, unless a newer build is live already
    (then it says so in its log). Writes the ``build_ready`` audit record (``details``:
    ``{"live": bool, "superseded": bool}``). Raises ``ValueError`` as ``publish_build`` does.
    """
    build.refresh_from_db(fields=["needs_review"])
    gallery_state = Gallery.objects.values_list("moderation_state", flat=True).get(pk=build.gallery_id)
    if gallery_state in (Gallery.ModerationState.TAKEN_DOWN, Gallery.ModerationState.DELETED):
        # Removed while this build ran: its files go the way of the others'.
        remove_build_files([(build.pk, build.source_key)])
        raise ValueError(f"the gallery was {Gallery.ModerationState(gallery_state).label.lower()} during the build")
    waits = build.needs_review and gallery_state == Gallery.ModerationState.APPROVED
    live = False if waits else publish_build(build)
    if not waits and not live:
        build.append_log("A newer build of this gallery is already live, so this one was not made live.")
    audit(AuditEvent.Action.BUILD_READY, gallery=build.gallery_id, build=build,
          details={"live": live, "superseded": not waits and not live})  # fmt: skip
    return live


def cancel(build: Build) -> bool:
    """Mark a build that has not finished as cancelled; return whether it was still running."""
    if build.state in FINAL_STATES:
        return False
    return build.set_state(BuildState.CANCELLED, "Cancelled by a moderator.")


# --- Reports from readers ----------------------------------------------------------------------


def reporter_key_for(ip: str, user: object = None) -> str:
    """The key that tells reporters apart (64 hex): ``hash_ip`` of the client ``ip``, with the
    user id when ``user`` is signed in; ``""`` with neither. The address is never stored."""
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    return hash_ip(f"{ip} user:{user_id}" if user_id is not None else ip)


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
    from (``""`` if unknown); ``by`` the signed-in reader or ``None``. Once
    ``settings.REPORTS_TAKEDOWN_THRESHOLD`` distinct reporter keys (0: never) have reported
    an approved gallery, it is taken down for review with ``hold_for_review`` (as the system):
    not served, nothing removed, back in the queue until a moderator decides.
    Raises ``ValueError`` for an unknown reason or details over ``REPORT_DETAILS_MAX_LENGTH`` characters.
    """
    if reason not in Report.Reason.values:
        raise ValueError(f"unknown report reason {reason!r}; choose one of {', '.join(Report.Reason.values)}")
    check_length("report", details, REPORT_DETAILS_MAX_LENGTH)
    threshold = settings.REPORTS_TAKEDOWN_THRESHOLD
    with transaction.atomic():
        # The gallery row lock serialises its reports, so the report that reaches the threshold
        # sees every earlier one and exactly one of them takes the gallery down.
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
        if threshold and state == State.APPROVED:
            # order_by(): the model's ordering would otherwise join the DISTINCT.
            reporters = gallery.reports.order_by().values("reporter_key").distinct().count()
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


def stored_bytes(user: object) -> int:
    """Bytes ``user``'s galleries keep in storage: each stored upload once (rebuilds share it) plus every stored bundle.

    Deleted galleries and builds whose files were removed do not count.
    """
    rows = (
        Build.objects.filter(gallery__owner=user, files_deleted=False)
        .exclude(gallery__moderation_state=State.DELETED)
        .values_list("source_key", "source_bytes", "bundle_bytes")
    )
    uploads: dict[str, int] = {}
    bundles = 0
    for source_key, source_bytes, bundle_bytes in rows:
        uploads[source_key] = source_bytes
        bundles += bundle_bytes or 0
    return sum(uploads.values()) + bundles


def check_quota(
    owner: object, *, new_gallery: bool = False, new_bytes: int = 0, new_build: bool = True, lock: bool = False
) -> None:
    """Raise ``QuotaExceeded`` if ``owner`` may not add what is asked.

    With ``new_build`` the concurrent builds (``PUBLISHER_MAX_CONCURRENT_BUILDS``, queued or running),
    with ``new_gallery`` the number of galleries (``PUBLISHER_MAX_GALLERIES``, deleted ones
    not counted), and with ``new_bytes`` (an upload's size) the stored bytes
    (``PUBLISHER_MAX_STORED_BYTES``, ``stored_bytes``). ``owner`` ``None`` or anonymous: no
    quotas (anonymous uploads are rate-limited per IP instead). ``lock=True`` (inside a
    transaction) first locks the owner's user row, so two requests at once are counted one
    after the other.
    """
    if owner is None or not getattr(owner, "is_authenticated", False):
        return
    if lock:
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()  # type: ignore[attr-defined]
    if new_gallery:
        count = Gallery.objects.filter(owner=owner).exclude(moderation_state=State.DELETED).count()
        if count >= settings.PUBLISHER_MAX_GALLERIES:
            raise QuotaExceeded(
                f"You have {count} galleries, the most one publisher may keep ({settings.PUBLISHER_MAX_GALLERIES}). "
                "Delete one you no longer need on My galleries, or upload a new version of an existing one."
            )
    running = Build.objects.filter(gallery__owner=owner).exclude(state__in=FINAL_STATES).count() if new_build else 0
    if new_build and running >= settings.PUBLISHER_MAX_CONCURRENT_BUILDS:
        raise QuotaExceeded(
            f"You already have {running} builds queued or running, the most one publisher may have at once "
            f"({settings.PUBLISHER_MAX_CONCURRENT_BUILDS}). Wait until one has finished (My galleries shows them), "
            "then try again."
        )
    if new_bytes:
        stored = stored_bytes(owner)
        limit = settings.PUBLISHER_MAX_STORED_BYTES
        if stored + new_bytes > limit:
            raise QuotaExceeded(
                f"This file ({format_megabytes(new_bytes)}) would bring the data your galleries keep here to "
                f"{format_megabytes(stored + new_bytes)}, over your {format_megabytes(limit)} quota. Delete galleries "
                "you no longer need on My galleries, or upload a smaller file."
            )


def publisher_needs_review(gallery: Gallery, by: object) -> bool:
    """Whether a build the publisher starts (signed in as ``by``, or ``None`` with the management link) waits for review.

    Only for an approved gallery, and unless ``by`` is trusted (``is_trusted``); an anonymous
    link holder never is.
    """
    return gallery.moderation_state == State.APPROVED and not is_trusted(by)


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
    The gallery keeps its database name (its URLs stay the same) and settings. The live
    build stays live while the new one builds; it replaces it once ready, unless it waits
    for review (``publisher_needs_review``: an approved gallery of an untrusted publisher),
    in which case a moderator's approval puts it live (``approve``). A rejected gallery's
    new version is what a moderator approves on appeal.

    Raises ``UploadRejected`` for a bad file or a gallery taken down or deleted,
    ``QuotaExceeded`` over the owner's quotas (``check_quota``), ``StorageUnavailable`` if
    the store fails; then no row is created and nothing stays in storage.
    """
    _changeable(gallery)
    check_upload(upload, filename)
    check_quota(gallery.owner, new_bytes=upload.size or 0)
    build_id = new_build_id()
    source_key = f"uploads/{build_id}/source.db"
    sha256, size = _store_upload(upload, source_key)
    try:
        with transaction.atomic():
            check_quota(gallery.owner, new_bytes=size, lock=True)
            build = _queued_build(
                gallery, build_id, source_key, sha256, size, needs_review=publisher_needs_review(gallery, by)
            )
            build.append_log(f"New version of “{gallery.title}” uploaded ({format_megabytes(size)}).")
            audit(
                AuditEvent.Action.NEW_VERSION, gallery=gallery, build=build, by=by,
                actor_label="" if by is not None else "holder of the management link",
                details={"filename": PurePath(filename).name, "bytes": size, "sha256": sha256,
                         "needs_review": build.needs_review},
            )  # fmt: skip
            transaction.on_commit(lambda: _enqueue(build), robust=True)
    except Exception:
        _forget_upload(source_key)
        raise
    return build


#: Gallery fields the build bakes into the bundle (worker_shell.tasks): changing one needs a rebuild.
BUNDLED_SETTINGS = ("title", "description", "plugins", "metadata", "datasette_version")


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

    The app-origin pages (title, description, visibility in the list) change at once; the
    gallery itself keeps running its live build, which has ``BUNDLED_SETTINGS`` baked in,
    so a change to any of those returns ``True`` (the publisher should rebuild).
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
        check_quota(user, new_gallery=True, new_build=False, lock=True)
        Gallery.objects.filter(pk=gallery.pk).update(owner=user, management_key_hash="", updated_at=timezone.now())
        gallery.owner = user  # type: ignore[assignment]
        gallery.management_key_hash = ""
        audit(AuditEvent.Action.CLAIM, gallery=gallery, by=user, details={"how": how} if how else None)
