"""Who owns an anonymous upload: its private management token and claiming it into an account."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from django.db import transaction
from django.utils import timezone

from gallery.models import (
    Actor,
    AuditEvent,
    Gallery,
)
from gallery.services.audit import audit
from gallery.services.quotas import QuotaSubject, check_quota

logger = logging.getLogger(__name__)


class ClaimRefused(ValueError):
    """A gallery cannot be claimed: wrong or stale management token, already owned, or deleted."""


def management_token_hash(token: str) -> str:
    """The sha256 of a management token, 64 lowercase hex digits: what ``Gallery.management_key_hash``
    stores and what a browser session keeps (``gallery.views.mine``) instead of the token."""
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


def claim_gallery(gallery: Gallery, user: Actor, token_hash: str, *, how: str = "") -> None:
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
