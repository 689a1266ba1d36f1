"""Removing a gallery's files from storage after a rejection, takedown or deletion, and finishing what a storage outage left."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q

from builder.storage import StorageError
from gallery.models import (
    Build,
    BuildReview,
    Gallery,
    ModerationState,
)
from gallery.storage import get_storage

logger = logging.getLogger(__name__)


def unpublish(gallery: Gallery) -> None:
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
    gone = Q(gallery__moderation_state__in=(ModerationState.TAKEN_DOWN, ModerationState.DELETED)) | Q(review=BuildReview.REJECTED)
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
