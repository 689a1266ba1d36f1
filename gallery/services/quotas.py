"""Publishers' quotas, counted per account or, for galleries published without one, per address."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet

from builder.sqlite_check import format_megabytes
from gallery.models import (
    FINAL_STATES,
    Actor,
    Build,
    Gallery,
    signed_in,
)
from gallery.services.uploads import UploadRejected

logger = logging.getLogger(__name__)


class QuotaExceeded(UploadRejected):
    """A publisher's quota (``PUBLISHER_MAX_*`` settings) would be exceeded; ``args[0]`` says which and what to do."""


@dataclass(frozen=True)
class QuotaSubject:
    """Whose quotas an upload or build counts against: an account (``owner``), or, for galleries
    published without one, the uploader's address (``ip_hash``, from ``hash_ip``)."""

    owner: Actor = None
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
        return signed_in(self.owner) is None

    def galleries(self) -> QuerySet[Gallery]:
        """Its galleries, deleted ones left out (none for an unknown address)."""
        account = signed_in(self.owner)
        if account is not None:
            mine = Gallery.objects.filter(owner=account)
        elif self.ip_hash:
            mine = Gallery.objects.filter(owner__isnull=True, uploader_ip_hash=self.ip_hash)
        else:
            mine = Gallery.objects.none()
        return mine.not_deleted()

    def lock(self) -> None:
        """Inside a transaction, serialise this subject's quota checks: the account's row lock, or
        for an address a PostgreSQL advisory lock on its hash (SQLite locks the whole database on write)."""
        account = signed_in(self.owner)
        if account is not None:
            get_user_model().objects.select_for_update().filter(pk=account.pk).first()
        elif self.ip_hash and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["glasshouse.quota:" + self.ip_hash])


def stored_bytes(subject: QuotaSubject | Actor) -> int:
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
