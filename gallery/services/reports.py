"""Readers' reports: who counts as a distinct reporter, what holds a gallery for review, and which reports a moderator has not seen."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from gallery.models import (
    DECISIONS,
    REPORT_DETAILS_MAX_LENGTH,
    Actor,
    AuditEvent,
    Gallery,
    ModerationState,
    Report,
    hash_ip,
    signed_in,
    unreviewed_reports,
)
from gallery.services.audit import audit, describe_actor
from gallery.services.notices import notify_publisher
from gallery.services.uploads import check_length

logger = logging.getLogger(__name__)


def has_unreviewed_reports(gallery: Gallery) -> bool:
    """Whether ``gallery`` has reports newer than a moderator's latest decision on it."""
    return Gallery.objects.filter(pk=gallery.pk).filter(unreviewed_reports()).exists()


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
    by: Actor = None,
) -> Report:
    """Record a reader's report of ``gallery`` (a ``Report`` and a ``report`` audit record) and return it.

    ``reason`` is a ``Report.Reason`` value; ``email`` optional (``""``), for the moderators'
    reply; ``reporter_key`` from ``reporter_key_for``; ``page_url`` the gallery page reported
    from (``""`` if unknown); ``by`` the signed-in reader or ``None``. Every report puts the
    gallery in the moderation queue (``gallery.models.unreviewed_reports``). Once
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
        user = signed_in(by)
        audit(
            AuditEvent.Action.REPORT, gallery=gallery, by=user,
            actor_label=describe_actor(user, ip_hash=reporter_key), reason=Report.Reason(reason).label,
            details={"report": report.pk, "reason": reason, "page_url": page_url},
        )  # fmt: skip
        if threshold and state == ModerationState.APPROVED and reason in Report.HOLD_REASONS:
            # order_by(): the model's ordering would otherwise join the DISTINCT.
            reporters = _reports_counting_toward_a_hold(gallery).order_by().values("reporter_key").distinct().count()
            if reporters >= threshold:
                hold_for_review(
                    gallery,
                    f"Held for review automatically: {reporters} readers reported it "
                    f"(REPORTS_TAKEDOWN_THRESHOLD is {threshold}).",
                )
    return report


def hold_for_review(gallery: Gallery, reason: str, *, by: Actor = None) -> bool:
    """Stop serving an approved ``gallery`` until a moderator looks at it; return whether it was held now.

    Readers' reports do this (``record_report``). Unlike a takedown it removes nothing and can be
    undone: the gallery stays ``approved`` with ``held_at`` set, is not public (its origins answer
    404 and the kill-switch ``sw.js``), joins the moderation queue, and ``approve`` serves it
    again; ``reject`` or ``take_down`` end it. The publisher is emailed. Returns ``False`` if the
    gallery is not approved or already held.
    """
    with transaction.atomic():
        held = Gallery.objects.filter(pk=gallery.pk, moderation_state=ModerationState.APPROVED, held_at__isnull=True).update(
            held_at=timezone.now(), moderation_reason=reason, updated_at=timezone.now()
        )
        if not held:
            return False
        gallery.refresh_from_db(fields=["held_at", "moderation_reason"])
        audit(AuditEvent.Action.HOLD, gallery=gallery, by=by, reason=reason)
        notify_publisher(
            gallery,
            f"“{gallery.title}” is held for review",
            f"Your gallery “{gallery.title}” is not shown while a moderator reviews it:\n\n{reason}\n\n"
            "Nothing was deleted. You will hear from us when the review is done.",
        )
    logger.info("gallery %s held for review", gallery.pk)
    return True
