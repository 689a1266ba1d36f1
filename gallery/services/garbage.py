"""Garbage collection of storage: what no gallery needs any more goes, daily.

``collect_garbage`` removes, in this order:

1. **Superseded builds**: each gallery keeps the files of its newest ``BUILDS_KEPT_PER_GALLERY``
   builds; older ones, once final, lose their ``builds/<id>/`` files and their upload
   (``removal.remove_build_files``, which sets ``Build.files_deleted``). Never the live build,
   the build waiting for review (what a moderator would approve), the newest ready build nor a
   build still running.
2. **Orphaned uploads**: ``uploads/<id>/`` folders that no ``Build`` row names, untouched for
   ``ORPHANED_UPLOAD_AGE`` (a request died between storing the file and committing its rows).
3. **Unreferenced shared files**: ``runtime/<name>/`` and ``wheels/<sha256>/`` folders that no
   stored build's ``manifest.json`` lists (``builder.bundle``: ``files[].key``), that the
   current catalog cannot need (this Pyodide version, the wheels of every lock file: a build
   running now writes its manifest last) and that are older than ``SHARED_FILE_GRACE``.

It is idempotent and safe on several machines at once: each gallery's builds are collected under
its row lock (``SELECT ... FOR UPDATE SKIP LOCKED``: a gallery another machine is collecting, or
that is being published, waits for the next run), and removing a removed file is a no-op. If a
manifest cannot be read (storage fault), no shared file is removed in that run.
Called by ``worker_shell.maintenance.collect_garbage`` (Celery beat, daily) and by
``manage.py collect_garbage [--dry-run]``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from builder.catalog import DATASETTE_VERSIONS, load_lock
from builder.manifest import Manifest
from builder.storage import MissingKey, Storage, StorageError
from gallery.models import FINAL_STATES, Build, BuildState, Gallery
from gallery.services import moderation, removal
from gallery.storage import get_storage

logger = logging.getLogger(__name__)

#: Seconds an upload folder with no ``Build`` row is left alone: the request that stored it may
#: still be committing its rows.
ORPHANED_UPLOAD_AGE = 24 * 3600
#: Seconds a shared runtime or wheel folder is left alone after it was written, whatever refers
#: to it: a build of an earlier release still running during a deploy may use it.
SHARED_FILE_GRACE = 24 * 3600


@dataclass
class Collected:
    """What one run removed (or, with ``dry_run``, would remove).

    ``builds``: ids of builds whose files went; ``uploads``: ``uploads/<id>/`` folders;
    ``shared``: ``runtime/<name>/`` and ``wheels/<sha256>/`` folders; ``failed``: what storage
    refused (logged; the next run tries again).
    """

    dry_run: bool = False
    builds: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: ``"Removed the files of 3 builds, 1 orphaned upload, 2 shared folders."``."""
        verb = "Would remove" if self.dry_run else "Removed"
        text = (
            f"{verb} the files of {len(self.builds)} superseded builds, {len(self.uploads)} orphaned uploads "
            f"and {len(self.shared)} unreferenced shared folders."
        )
        return text + (f" Storage refused {len(self.failed)}: {', '.join(self.failed)}." if self.failed else "")


def collect_garbage(*, dry_run: bool = False, now: float | None = None) -> Collected:
    """Remove superseded builds' files, orphaned uploads and unreferenced shared files; return what went.

    ``now`` (POSIX seconds, default the clock) is when the ages are measured from. With
    ``dry_run`` nothing is removed or changed. Storage faults are logged and listed in
    ``Collected.failed``, never raised.
    """
    now = time.time() if now is None else now
    result = Collected(dry_run=dry_run)
    collect_superseded_builds(result)
    collect_orphaned_uploads(result, now)
    collect_shared_files(result, now)
    logger.info("garbage collection: %s", result.summary())
    return result


def superseded_builds(gallery: Gallery, kept: int) -> list[tuple[str, str]]:
    """``(build id, source_key)`` of ``gallery``'s builds whose files may go, oldest last.

    Those beyond the newest ``kept`` builds (by ``created_at``) that are final and still have
    their files, except the live build, the build waiting for review (``moderation.build_to_review``)
    and the newest ready build. An older build that waited for review and was superseded by a
    newer one before anyone reviewed it is never served, so it may go.
    """
    builds = list(gallery.builds.order_by("-created_at").values_list("pk", "source_key", "state", "files_deleted"))
    newest_ready = next((pk for pk, _, state, gone in builds if state == BuildState.READY and not gone), None)
    to_review = moderation.build_to_review(gallery)
    protected = {gallery.live_build_id, newest_ready, to_review.pk if to_review else None}
    return [
        (pk, source_key)
        for pk, source_key, state, gone in builds[kept:]
        if not gone and state in FINAL_STATES and pk not in protected
    ]


def collect_superseded_builds(result: Collected) -> None:
    """Step 1 of ``collect_garbage``: each gallery with more than ``BUILDS_KEPT_PER_GALLERY`` builds, under its lock."""
    kept = settings.BUILDS_KEPT_PER_GALLERY
    crowded = (
        Build.objects.order_by().values("gallery_id").annotate(count=Count("pk")).filter(count__gt=kept)
        .values_list("gallery_id", flat=True)
    )  # fmt: skip
    for gallery_id in crowded:
        with transaction.atomic():
            gallery = Gallery.objects.select_for_update(skip_locked=True).filter(pk=gallery_id).first()
            if gallery is None:
                continue  # another machine is collecting it, or a build is going live: next run
            victims = superseded_builds(gallery, kept)
            if result.dry_run:
                result.builds += [pk for pk, _ in victims]
                continue
            done = removal.remove_build_files(victims)
        result.builds += done
        result.failed += [f"builds/{pk}/" for pk, _ in victims if pk not in done]


def collect_orphaned_uploads(result: Collected, now: float) -> None:
    """Step 2 of ``collect_garbage``: ``uploads/<id>/`` folders no ``Build`` names, older than ``ORPHANED_UPLOAD_AGE``."""
    storage = get_storage()
    try:
        folders = _folders(storage.keys_with_mtime("uploads/"))
    except StorageError as exc:
        logger.error("garbage collection could not list uploads: %s", exc)
        result.failed.append("uploads/")
        return
    for folder, modified in sorted(folders.items()):
        if modified > now - ORPHANED_UPLOAD_AGE or Build.objects.filter(source_key__startswith=folder).exists():
            continue
        _remove(storage, folder, result.uploads, result)


def collect_shared_files(result: Collected, now: float) -> None:
    """Step 3 of ``collect_garbage``: shared runtime and wheel folders nothing refers to.

    Reads the manifest of every build that still has its files; if one cannot be read for a
    storage fault, removes nothing (it cannot tell what that build needs).
    """
    storage = get_storage()
    try:
        # Less the builds step 1 removed (a dry run only listed them: count them as gone too).
        stored = Build.objects.filter(files_deleted=False).exclude(pk__in=result.builds)
        needed = referenced_shared_folders(stored.values_list("pk", flat=True))
        folders = _folders(storage.keys_with_mtime("runtime/")) | _folders(storage.keys_with_mtime("wheels/"))
    except (StorageError, ValueError) as exc:
        logger.error("garbage collection left shared files alone: %s", exc)
        result.failed.append("runtime/, wheels/")
        return
    needed |= current_shared_folders()
    for folder, modified in sorted(folders.items()):
        if folder not in needed and modified <= now - SHARED_FILE_GRACE:
            _remove(storage, folder, result.shared, result)


def referenced_shared_folders(build_ids: Iterable[str]) -> set[str]:
    """The ``runtime/<name>/`` and ``wheels/<sha256>/`` folders the manifests of ``build_ids`` list.

    A build without a manifest (still running, or failed before writing one) refers to nothing.
    Raises ``StorageError`` if storage fails, ``ValueError`` for a manifest that is not JSON.
    """
    storage = get_storage()
    needed: set[str] = set()
    for build_id in build_ids:
        try:
            with storage.open(f"builds/{build_id}/manifest.json") as fh:
                manifest = Manifest.from_json(fh.read(), f"builds/{build_id}/manifest.json")
        except MissingKey:
            continue
        needed.update(folder for entry in manifest.files if (folder := _shared_folder(entry.key)))
    return needed


def current_shared_folders() -> set[str]:
    """What a build started now may use: this Pyodide version's runtime and every wheel of every lock file."""
    needed = {f"runtime/pyodide-{settings.PYODIDE_VERSION}/"}
    for version in DATASETTE_VERSIONS:
        needed.update(f"wheels/{package['sha256']}/" for package in load_lock(version)["packages"].values())
    return needed


def _shared_folder(key: str) -> str | None:
    """``"wheels/<sha256>/"`` for ``"wheels/<sha256>/<file>.whl"``, ``"runtime/<name>/"`` likewise; else None."""
    parts = key.split("/")
    return f"{parts[0]}/{parts[1]}/" if len(parts) > 2 and parts[0] in ("runtime", "wheels") else None


def _folders(keys: Iterable[tuple[str, float]]) -> dict[str, float]:
    """``{"<top>/<name>/": newest modification time}`` of ``(key, mtime)`` pairs such as ``uploads/<id>/source.db``."""
    newest: dict[str, float] = defaultdict(float)
    for key, modified in keys:
        parts = key.split("/")
        if len(parts) > 2:
            folder = f"{parts[0]}/{parts[1]}/"
            newest[folder] = max(newest[folder], modified)
    return dict(newest)


def _remove(storage: Storage, folder: str, removed: list[str], result: Collected) -> None:
    if result.dry_run:
        removed.append(folder)
        return
    try:
        storage.delete_prefix(folder)
    except (StorageError, OSError) as exc:
        logger.error("garbage collection could not remove %s: %s", folder, exc)
        result.failed.append(folder)
        return
    removed.append(folder)
