"""Emails to a gallery's publisher about moderators' and readers' decisions."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from gallery.models import Gallery

logger = logging.getLogger(__name__)


def notify_publisher(gallery: Gallery, subject: str, body: str) -> None:
    """Email the gallery's owner after commit, through Django's email backend; anonymous uploads get none.

    A mail failure is logged, never raised: the moderation decision stands.
    """
    owner = gallery.owner
    if owner is None or not owner.email:
        return
    page = settings.APP_URL + "/mine/"

    def send() -> None:
        try:
            send_mail(subject, f"{body}\n\nMy galleries: {page}\n", None, [owner.email])
        except Exception:
            logger.exception("could not email the publisher of %s", gallery.pk)

    transaction.on_commit(send)
