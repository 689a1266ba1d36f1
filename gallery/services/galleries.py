"""A gallery's life from the publisher's side: a new gallery from an upload, its settings, a new version."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import PurePath

from django.db import transaction
from django.utils import timezone

from builder.catalog import (
    DEFAULT_DATASETTE_VERSION,
)
from builder.sqlite_check import format_megabytes
from gallery.models import (
    BUNDLED_SETTINGS,
    Actor,
    AuditEvent,
    Build,
    Gallery,
    ModerationState,
    bundled_settings,
    database_name_for,
    hash_ip,
    new_build_id,
    signed_in,
)
from gallery.services.audit import audit, describe_actor
from gallery.services.publishing import approval_for, check_no_build_running, enqueue, queue_build
from gallery.services.quotas import QuotaSubject, check_quota
from gallery.services.uploads import (
    UploadFile,
    UploadRejected,
    check_upload,
    clean_search_columns,
    clean_settings,
    forget_upload,
    source_suffix,
    store_upload,
)

logger = logging.getLogger(__name__)


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
    full_text_search: bool = False,
    search_columns: Iterable[str] = (),
    owner: Actor = None,
    uploader_ip: str = "",
    by_operator: bool = False,
) -> Build:
    """Store an uploaded SQLite database (or a CSV, TSV, JSON or Excel file) privately and queue its first build.

    Validates everything again (the form already did; the command did not):
    name, size, SQLite header (or the tabular file's first bytes), title, plugins, visibility,
    Datasette version, ``metadata_text`` (YAML or JSON, see ``builder.metadata``), and
    ``search_columns`` (``clean_search_columns``: full-text search, for a tabular file, on those
    columns, or on every text column with ``full_text_search`` and none named).
    Streams ``upload`` to storage key ``uploads/<build-id>/source<suffix>`` (``source_suffix``) while
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
    columns = clean_search_columns(search_columns)

    owner = signed_in(owner)
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
    source_key = f"uploads/{build_id}/source{source_suffix(filename)}"
    sha256, size = store_upload(upload, source_key)
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
                full_text_search=full_text_search,
                search_columns=columns,
            )
            build = queue_build(
                gallery, build_id, source_key, sha256, size, bundle_settings=bundled_settings(gallery),
                approval=approval, by=owner,
            )  # fmt: skip
            audit(
                AuditEvent.Action.UPLOAD, gallery=gallery, build=build, by=owner,
                actor_label="operator (publish command)" if by_operator else describe_actor(owner, ip_hash=ip_hash),
                details={"filename": PurePath(filename).name, "bytes": size, "sha256": sha256,
                         "plugins": plugins, "state": gallery.moderation_state},
            )  # fmt: skip
            transaction.on_commit(lambda: enqueue(build), robust=True)
    except Exception:
        forget_upload(source_key)
        raise
    logger.info(
        "accepted upload %s (%d bytes) as gallery %s, build %s",
        filename,
        size,
        gallery.id,
        build.id,
    )
    return build


def check_changeable(gallery: Gallery) -> None:
    """Raise ``UploadRejected`` if the publisher may no longer change ``gallery`` (taken down or deleted)."""
    if gallery.moderation_state == ModerationState.TAKEN_DOWN:
        raise UploadRejected(
            f"“{gallery.title}” was taken down by a moderator{': ' + gallery.moderation_reason if gallery.moderation_reason else ''}; "
            "it cannot be changed. Write to the moderators if you think this is a mistake."
        )
    if gallery.is_deleted:
        raise UploadRejected(f"“{gallery.title}” was deleted; publish the database as a new gallery.")


def upload_new_version(gallery: Gallery, *, upload: UploadFile, filename: str, by: Actor = None) -> Build:
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
    check_changeable(gallery)
    check_upload(upload, filename)
    check_no_build_running(gallery)
    quota = QuotaSubject.of(gallery)
    check_quota(quota, new_bytes=upload.size or 0)
    build_id = new_build_id()
    source_key = f"uploads/{build_id}/source{source_suffix(filename)}"
    sha256, size = store_upload(upload, source_key)
    try:
        with transaction.atomic():
            Gallery.objects.select_for_update().filter(pk=gallery.pk).first()
            check_no_build_running(gallery)
            check_quota(quota, new_bytes=size, lock=True)
            approval = approval_for(by)
            build = queue_build(
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
            transaction.on_commit(lambda: enqueue(build), robust=True)
    except Exception:
        forget_upload(source_key)
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
    full_text_search: bool = False,
    search_columns: Iterable[str] = (),
    by: Actor = None,
) -> bool:
    """Change ``gallery``'s settings; return whether a rebuild is needed to apply them.

    Visibility applies at once. ``BUNDLED_SETTINGS`` (title, description, plugins, metadata,
    Datasette version, full-text search for a tabular upload) are the publisher's draft: the publisher's pages show them, but public
    pages and the gallery itself keep showing the live build's own copy (``Build.bundle_settings``)
    until a build made with them is approved, so a change to any of those returns ``True`` (the
    publisher should rebuild; that build waits for review unless ``approval_for`` vouches).
    ``datasette_version`` ``None`` keeps the current one. Raises ``UploadRejected`` for bad
    values (``clean_settings``) or a gallery taken down or deleted. Writes an ``edit``
    audit record with the changed fields.
    """
    check_changeable(gallery)
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
        "full_text_search": full_text_search,
        "search_columns": clean_search_columns(search_columns),
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
