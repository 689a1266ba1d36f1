"""The moderation state machine: approve the build reviewed, reject, take down, delete, trust; email the publisher."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gallery.models import (
    FINAL_STATES,
    MODERATION_REASON_MAX_LENGTH,
    Actor,
    Approval,
    AuditEvent,
    Build,
    BuildReview,
    BuildState,
    Gallery,
    ModerationState,
    Publisher,
    signed_in,
)
from gallery.services.audit import audit, describe_actor
from gallery.services.notices import notify_publisher
from gallery.services.removal import unpublish
from gallery.services.reports import has_unreviewed_reports
from gallery.services.uploads import check_length

logger = logging.getLogger(__name__)


#: Moderation transitions a moderator (or an operator) may make: ``{from: {to, ...}}``. Deletion
#: (any state but deleted -> deleted) is the publisher's or an admin's, through ``delete_gallery``.
TRANSITIONS: dict[str, frozenset[str]] = {
    ModerationState.PENDING: frozenset({ModerationState.APPROVED, ModerationState.REJECTED, ModerationState.TAKEN_DOWN}),
    ModerationState.APPROVED: frozenset({ModerationState.REJECTED, ModerationState.TAKEN_DOWN}),
    ModerationState.REJECTED: frozenset({ModerationState.APPROVED, ModerationState.TAKEN_DOWN}),
    ModerationState.TAKEN_DOWN: frozenset(),
    ModerationState.DELETED: frozenset(),
}


class InvalidTransition(ValueError):
    """The gallery's moderation state does not allow the action. ``args[0]`` says why, for people."""


class NewerVersion(InvalidTransition):
    """A newer build became ready since the moderator's page was drawn; ``args[0]`` says so."""


def transition(
    gallery: Gallery,
    to: str,
    action: str,
    *,
    by: Actor,
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
            f"“{gallery.title}” is {ModerationState(current).label.lower()}; it cannot be "
            f"{'deleted' if to == ModerationState.DELETED else ModerationState(to).label.lower()} from that state."
        )
    Gallery.objects.filter(pk=gallery.pk).update(
        moderation_state=to, moderation_reason=reason, updated_at=timezone.now()
    )
    gallery.moderation_state = to
    gallery.moderation_reason = reason
    audit(action, gallery=gallery, build=build, by=by, reason=reason, details={"from": current, "to": to})
    logger.info("gallery %s: %s -> %s", gallery.pk, current, to)
    return current


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


def approval_refusal(gallery: Gallery, shown: Build | None) -> str | None:
    """Why ``gallery`` cannot be approved now, in words for the moderator; ``None`` if it can.

    ``shown`` is ``build_to_review(gallery)``. The one rule of who may be approved, which
    ``approve`` enforces and the admin asks before offering the button: there must be a build
    to review; an approved gallery needs something to look at (a new version, a hold or reports
    since the last decision); any other state must allow the move to approved (``TRANSITIONS``).
    """
    if shown is None:
        return (
            f"“{gallery.title}” has no version to approve: nothing finished building, or its files were "
            "removed when it was rejected. The publisher must upload a (corrected) version first."
        )
    state = gallery.moderation_state
    if state == ModerationState.APPROVED:
        if gallery.held_at is None and shown.review != BuildReview.PENDING and not has_unreviewed_reports(gallery):
            return f"“{gallery.title}” is already approved, with no new version or reports to review."
        return None
    if ModerationState.APPROVED not in TRANSITIONS.get(state, frozenset()):
        return f"“{gallery.title}” is {ModerationState(state).label.lower()}; it cannot be approved from that state."
    return None


def approve(gallery: Gallery, *, build: str, by: Actor = None, reason: str = "") -> None:
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
        gallery.refresh_from_db(fields=["moderation_state", "live_build", "held_at"])
        shown = build_to_review(gallery)
        if shown is not None and shown.pk != build:
            raise NewerVersion(
                f"A newer version of “{gallery.title}” arrived since this page was drawn (build {shown.pk}); "
                "review it (its preview, tables and data scan), then approve again."
            )
        refusal = approval_refusal(gallery, shown)
        if refusal is not None or shown is None:
            raise InvalidTransition(refusal)
        new_version = shown.review == BuildReview.PENDING
        if current == ModerationState.APPROVED:
            held = gallery.held_at is not None
            reported = has_unreviewed_reports(gallery)
            audit(AuditEvent.Action.APPROVE, gallery=gallery, build=shown, by=by, reason=reason,
                  details={"from": current, "to": current, "version": shown.pk if new_version else None,
                           "released_hold": held, "reports_reviewed": reported})  # fmt: skip
        else:
            transition(gallery, ModerationState.APPROVED, AuditEvent.Action.APPROVE, by=by, reason=reason, build=shown)
        Gallery.objects.filter(pk=gallery.pk).update(held_at=None)
        gallery.held_at = None
        if new_version:
            user = signed_in(by)
            Build.objects.filter(pk=shown.pk).update(
                review=BuildReview.APPROVED, approval=Approval.MODERATOR, reviewed_at=timezone.now(), reviewed_by=user
            )
        if gallery.live_build_id != shown.pk:
            Gallery.objects.filter(pk=gallery.pk).update(live_build=shown, updated_at=timezone.now())
            gallery.live_build = shown


def reject(gallery: Gallery, reason: str, *, by: Actor = None) -> None:
    """Reject ``gallery`` (pending or approved -> rejected) for a fixable ``reason``, shown to the publisher.

    It stops being served at once (readers' Service Workers are replaced by the kill switch),
    every build it has, finished or not, is ``rejected`` (never served again, previews
    included), and their files are removed from storage after commit. The publisher may
    upload a corrected version. Raises ``InvalidTransition`` from other states, ``ValueError``
    without a reason or with one over ``MODERATION_REASON_MAX_LENGTH`` characters.
    """
    _remove(
        gallery, ModerationState.REJECTED, AuditEvent.Action.REJECT, reason, by=by,
        subject=f"“{gallery.title}” was not published",
        body=f"A moderator rejected your gallery “{gallery.title}”:\n\n{{reason}}\n\n"
        "Fix it and upload a corrected version from My galleries; a moderator will look at it again.",
    )  # fmt: skip


def take_down(gallery: Gallery, reason: str, *, by: Actor = None) -> None:
    """Take ``gallery`` down for abuse (pending, approved or rejected -> taken_down); its origins,
    previews included, answer 410.

    Its builds' files are removed from storage after commit, and readers' Service Workers
    are replaced by the kill switch. Raises ``InvalidTransition`` from other states and
    ``ValueError`` without a reason or with one over ``MODERATION_REASON_MAX_LENGTH`` characters.
    """
    _remove(
        gallery, ModerationState.TAKEN_DOWN, AuditEvent.Action.TAKE_DOWN, reason, by=by,
        subject=f"“{gallery.title}” was taken down",
        body=f"A moderator took down your gallery “{gallery.title}”:\n\n{{reason}}\n\n"
        "Its addresses no longer serve it and its files were removed. Reply to this email to appeal.",
    )  # fmt: skip


def _remove(gallery: Gallery, to: str, action: str, reason: str, *, by: Actor, subject: str, body: str) -> None:
    """Move ``gallery`` to ``to`` for ``reason`` (required), stop serving it, remove its files
    after commit and email the publisher ``body`` (with ``{reason}`` filled in)."""
    reason = required_reason(reason)
    with transaction.atomic():
        transition(gallery, to, action, by=by, reason=reason)
        for unfinished in gallery.builds.exclude(state__in=FINAL_STATES):
            unfinished.set_state(BuildState.CANCELLED, f"Cancelled: the gallery was {ModerationState(to).label.lower()}.")
        user = signed_in(by)
        # A build still running now is covered too: it finishes rejected and its files go (finish_build).
        gallery.builds.exclude(review=BuildReview.REJECTED).update(
            review=BuildReview.REJECTED, reviewed_at=timezone.now(), reviewed_by=user
        )
        unpublish(gallery)
        notify_publisher(gallery, subject, body.replace("{reason}", reason))


def delete_gallery(gallery: Gallery, *, by: Actor = None, reason: str = "") -> None:
    """Delete ``gallery``: it becomes a tombstone (state ``deleted``) and its files are removed.

    The row stays, so the id is never reused and its origins answer 410; reports and
    builds stay for the audit trail. Raises ``InvalidTransition`` if already deleted.
    """
    with transaction.atomic():
        transition(
            gallery, ModerationState.DELETED, AuditEvent.Action.DELETE, by=by, reason=reason,
            allowed_from=set(ModerationState.values) - {ModerationState.DELETED},
        )  # fmt: skip
        unpublish(gallery)


def trust_publisher(user: User, *, by: Actor = None) -> None:
    """Mark ``user``'s account trusted: their uploads are approved and new versions go live without review."""
    publisher, _ = Publisher.objects.get_or_create(user=user)
    if publisher.trusted:
        return
    Publisher.objects.filter(pk=publisher.pk).update(trusted=True, trusted_at=timezone.now())
    audit(AuditEvent.Action.TRUST, by=by, details={"publisher": describe_actor(user), "user_id": user.pk})


def required_reason(reason: str) -> str:
    """``reason`` stripped. Raises ``ValueError`` if it is empty, ``UploadRejected`` (a ``ValueError``) if it
    is over ``MODERATION_REASON_MAX_LENGTH`` characters."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("Give a reason: the publisher reads it.")
    check_length("reason", reason, MODERATION_REASON_MAX_LENGTH)
    return reason
