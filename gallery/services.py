"""Operations on galleries and builds: accept an upload, publish, moderate, rebuild.

Views, admin actions and the ``publish`` command all call these, so each rule
lives in one place. Errors meant for the publisher carry their message in
``args[0]``: ``UploadRejected`` (the upload itself is wrong) and
``StorageUnavailable`` (the store is down; nothing was saved).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from builder.catalog import (
    DATASETTE_VERSIONS,
    DEFAULT_DATASETTE_VERSION,
    UnknownPlugin,
    check_plugins,
)
from builder.metadata import InvalidMetadata, parse_metadata
from builder.sqlite_check import InvalidDatabase, check_header
from builder.storage import StorageError
from gallery import queue
from gallery.models import (
    FINAL_STATES,
    Build,
    BuildState,
    Gallery,
    database_name_for,
    new_build_id,
)
from gallery.storage import get_storage

logger = logging.getLogger(__name__)

#: File name endings accepted for an upload.
ALLOWED_EXTENSIONS: tuple[str, ...] = (".db", ".sqlite", ".sqlite3")
STORAGE_UNAVAILABLE_MESSAGE = (
    "Storage is unavailable; your file was not saved. Try again in a few minutes."
)
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


def format_megabytes(size_bytes: int) -> str:
    """Return ``size_bytes`` in MB (1 MB = 1024 * 1024 bytes), e.g. ``"100 MB"`` or ``"1.5 MB"``."""
    megabytes = size_bytes / (1024 * 1024)
    return (
        f"{megabytes:.0f} MB" if megabytes == int(megabytes) else f"{megabytes:.1f} MB"
    )


def check_filename(filename: str) -> None:
    """Raise ``UploadRejected`` unless ``filename`` ends in .db, .sqlite or .sqlite3 (any case)."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        shown = f"“{suffix}”" if suffix else "no extension"
        raise UploadRejected(
            f"The file has {shown}; upload a SQLite database ending in .db, .sqlite or .sqlite3."
        )


def check_size(size_bytes: int) -> None:
    """Raise ``UploadRejected`` if ``size_bytes`` is 0 or above ``UPLOAD_MAX_BYTES``."""
    if size_bytes == 0:
        raise UploadRejected(
            "The file is empty. Choose a SQLite database file (.db, .sqlite, .sqlite3)."
        )
    if size_bytes > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected(
            f"The file is {format_megabytes(size_bytes)}, larger than the "
            f"{format_megabytes(settings.UPLOAD_MAX_BYTES)} limit. Remove tables or rows you do not need "
            "(then VACUUM) and upload it again."
        )


def check_upload(upload: UploadFile, filename: str) -> None:
    """Check an upload's name, size and SQLite header; raise ``UploadRejected`` with the first problem."""
    check_filename(filename)
    size = upload.size if upload.size is not None else _measure(upload)
    check_size(size)
    upload.seek(0)
    try:
        check_header(upload)  # type: ignore[arg-type]
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
) -> Build:
    """Store an uploaded SQLite database privately and queue its first build.

    Validates everything again (the form already did; the command did not):
    name, size, SQLite header, title, plugins, visibility, Datasette version,
    and ``metadata_text`` (YAML or JSON, see ``builder.metadata``).
    Streams ``upload`` to storage key ``uploads/<build-id>/source.db`` while
    hashing it (sha256), then creates the ``Gallery`` and its queued ``Build`` in
    one transaction and enqueues the build after commit. The gallery starts
    approved when ``GALLERY_AUTO_APPROVE`` is set, else pending.

    Returns the new ``Build`` (``build.gallery`` is set). Raises
    ``UploadRejected`` for a bad upload and ``StorageUnavailable`` if the store
    fails; in both cases no row is created and nothing stays in storage.
    """
    title = title.strip()
    if not title:
        raise UploadRejected("Give the gallery a title.")
    try:
        plugins = check_plugins(list(plugins), datasette_version)
    except (UnknownPlugin, ValueError) as exc:
        raise UploadRejected(exc.args[0]) from exc
    if visibility not in Gallery.Visibility.values:
        raise UploadRejected(
            f"Visibility must be one of {', '.join(Gallery.Visibility.values)}."
        )
    if datasette_version not in DATASETTE_VERSIONS:
        raise UploadRejected(
            f"Datasette {datasette_version} is not offered; choose one of {', '.join(DATASETTE_VERSIONS)}."
        )
    try:
        metadata = parse_metadata(metadata_text, database_name=database_name_for(filename), plugins=plugins)
    except InvalidMetadata as exc:
        raise UploadRejected(exc.args[0]) from exc
    check_upload(upload, filename)

    build_id = new_build_id()
    source_key = f"uploads/{build_id}/source.db"
    sha256, size = _store_upload(upload, source_key)
    try:
        with transaction.atomic():
            gallery = Gallery.objects.create(
                title=title,
                description=description.strip(),
                visibility=visibility,
                moderation_state=(
                    Gallery.ModerationState.APPROVED
                    if settings.GALLERY_AUTO_APPROVE
                    else Gallery.ModerationState.PENDING
                ),
                database_name=database_name_for(filename),
                plugins=plugins,
                metadata=metadata,
                datasette_version=datasette_version,
            )
            build = Build.objects.create(
                id=build_id,
                gallery=gallery,
                state=BuildState.QUEUED,
                source_key=source_key,
                source_sha256=sha256,
                source_bytes=size,
            )
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
            with tempfile.NamedTemporaryFile(
                dir=settings.FILE_UPLOAD_TEMP_DIR, suffix=".db"
            ) as spool:
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
    """Send ``build`` to the queue; if the broker is unreachable, say so in its log."""
    try:
        queue.send_build(build.id)
    except Exception as exc:
        logger.exception("could not enqueue build %s", build.id)
        build.append_log(
            f"Could not reach the build queue ({type(exc).__name__}); a moderator can start it again with Rebuild."
        )
        raise


def publish_build(build: Build) -> None:
    """Make ``build`` the gallery's live build: one ``UPDATE`` of ``Gallery.live_build``.

    Call it only after every bundle file is in storage. Raises ``ValueError`` if
    the build is failed or cancelled (as stored now, not as ``build`` remembers).
    Moderation is unchanged: a pending or taken-down gallery stays unserved.
    """
    with transaction.atomic():
        state = (
            Build.objects.select_for_update()
            .filter(pk=build.pk)
            .values_list("state", flat=True)
            .first()
        )
        if state is None or state in (BuildState.FAILED, BuildState.CANCELLED):
            raise ValueError(
                f"build {build.pk} is {state or 'gone'}; only a complete build can go live"
            )
        Gallery.objects.filter(pk=build.gallery_id).update(
            live_build=build, updated_at=timezone.now()
        )
    logger.info("gallery %s now serves build %s", build.gallery_id, build.pk)


def _moderate(gallery: Gallery, state: str, reason: str = "") -> None:
    Gallery.objects.filter(pk=gallery.pk).update(
        moderation_state=state, moderation_reason=reason, updated_at=timezone.now()
    )
    gallery.moderation_state = state
    gallery.moderation_reason = reason
    logger.info("gallery %s is now %s", gallery.pk, state)


def approve(gallery: Gallery) -> None:
    """Approve ``gallery``: once it has a live build, the content origin serves it."""
    _moderate(gallery, Gallery.ModerationState.APPROVED)


def reject(gallery: Gallery, reason: str) -> None:
    """Reject ``gallery`` with ``reason`` (shown to the publisher); it is not served."""
    _moderate(gallery, Gallery.ModerationState.REJECTED, reason.strip())


def take_down(gallery: Gallery, reason: str = "") -> None:
    """Take ``gallery`` down: its origin answers 410 and serves the kill-switch ``sw.js``.

    ``live_build`` is kept for the audit trail; the content origin checks the
    moderation state before it.
    """
    _moderate(gallery, Gallery.ModerationState.TAKEN_DOWN, reason.strip())


def rebuild(gallery: Gallery) -> Build:
    """Queue a new build of ``gallery`` from its stored upload; return it.

    The new build reads the same ``source_key`` as the gallery's latest build (the
    upload is stored once). Raises ``ValueError`` if the gallery has no build to
    take the source from.
    """
    latest = gallery.builds.order_by("-created_at").first()
    if latest is None:
        raise ValueError(f"gallery {gallery.pk} has no upload to rebuild from")
    with transaction.atomic():
        build = Build.objects.create(
            gallery=gallery,
            state=BuildState.QUEUED,
            source_key=latest.source_key,
            source_sha256=latest.source_sha256,
            source_bytes=latest.source_bytes,
        )
        build.append_log(f"Rebuild of build {latest.id}.")
        transaction.on_commit(lambda: _enqueue(build), robust=True)
    return build


def cancel(build: Build) -> bool:
    """Mark a build that has not finished as cancelled; return whether it was still running."""
    if build.state in FINAL_STATES:
        return False
    return build.set_state(BuildState.CANCELLED, "Cancelled by a moderator.")
