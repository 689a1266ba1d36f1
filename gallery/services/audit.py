"""The append-only audit log and who did something, in words."""

from __future__ import annotations

import logging

from gallery.models import (
    MODERATORS_GROUP,
    Actor,
    AuditEvent,
    Build,
    Gallery,
    signed_in,
)

logger = logging.getLogger(__name__)


def describe_actor(user: Actor = None, *, ip_hash: str = "") -> str:
    """Who did something, in words for the audit log.

    A user -> ``"<email or username> (staff)"`` / ``"(moderator)"`` / ``""``; no user but an
    ``ip_hash`` -> ``"anonymous <first 8 hex>"``; neither -> ``"system"``.
    """
    person = signed_in(user)
    if person is not None:
        name = person.email or person.username or f"user {person.pk}"
        if person.is_superuser or person.is_staff:
            is_moderator = person.groups.filter(name=MODERATORS_GROUP).exists()
            return f"{name} ({'moderator' if is_moderator else 'staff'})"
        return name
    if ip_hash:
        return f"anonymous {ip_hash[:8]}"
    return "system"




def audit(
    action: str,
    *,
    gallery: Gallery | str | None = None,
    build: Build | str | None = None,
    by: Actor = None,
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
    user = signed_in(by)
    return AuditEvent.objects.create(
        action=action,
        gallery_id=getattr(gallery, "pk", gallery) or "",
        build_id=getattr(build, "pk", build) or "",
        actor=user,
        actor_label=actor_label or describe_actor(user),
        reason=reason,
        details=details or {},
    )
