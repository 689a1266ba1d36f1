"""Publishers: whether a moderator trusts an account to publish without review."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import models

#: Who acts: a user (signed in), Django's ``AnonymousUser`` (a request signed out), or ``None``
#: (the system, an operator's command, the holder of a management link).
type Actor = User | AnonymousUser | None


def signed_in(actor: Actor) -> User | None:
    """``actor`` if it is a signed-in user, else ``None`` (anonymous, the system, a link holder)."""
    return actor if isinstance(actor, User) and actor.is_authenticated else None

#: The group whose staff members moderate (``gallery.apps.ensure_moderators_group`` makes it).
MODERATORS_GROUP = "Moderators"


class Publisher(models.Model):
    """What Glasshouse knows about a user who publishes: whether a moderator trusts them.

    Trusted publishers (and staff) are approved automatically, and their new versions go
    live without review.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="publisher"
    )
    trusted = models.BooleanField(default=False)
    trusted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"publisher {self.user}"


def is_trusted(user: Actor) -> bool:
    """Whether ``user`` (a ``User``, ``AnonymousUser`` or ``None``) publishes without review: staff or trusted."""
    user = signed_in(user)
    if user is None:
        return False
    if getattr(user, "is_staff", False):
        return True
    return Publisher.objects.filter(user=user, trusted=True).exists()
