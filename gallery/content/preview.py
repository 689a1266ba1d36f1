"""Signed, expiring preview origins: a pending gallery seen by its publisher and by moderators.

A preview origin is ``<label>.<CONTENT_DOMAIN>`` with the label

    ``pv-<build-id>-<expiry>-<signature>``

- ``<build-id>``: the build shown (``BUILD_ID_RE``, 16 characters);
- ``<expiry>``: when the link stops working, in Unix seconds, base 36, lowercase, no
  leading zero (so one grant has exactly one label, hence one origin);
- ``<signature>``: ``salted_hmac(PREVIEW_SALT, "<build-id>:<expiry>", algorithm="sha256")``
  (keyed with ``SECRET_KEY``), its first 26 base32 characters, lowercase: 130 bits.

Why this shape: a host label is at most 63 characters of ``[a-z0-9-]`` and browsers
lowercase hosts, so the signature is base32 (not base64); the label is about 53
characters. The hyphen after ``pv`` means a preview label never matches
``CONTENT_LABEL_RE`` (gallery ids and build ids have none), so a preview is never
the gallery's public origin nor a pinned one, and each (build, expiry) has an origin
of its own: its Service Worker and caches are not the public gallery's.

Links are minted for whoever may see them (the moderation queue, "My galleries") by
``preview_url(build)``; anyone holding one sees the build until it expires, so the
lifetime (``settings.PREVIEW_LIFETIME``) is short. ``gallery.content`` serves
preview origins and answers 403 to any label ``parse_preview_label`` refuses.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from gallery.models import BUILD_ID_RE, Build
from gallery.origins import content_origin

#: Salt of the preview signature: a signature made for anything else never verifies here.
PREVIEW_SALT = "glasshouse.gallery.preview"
#: First characters of every preview label (and of no gallery or pinned label).
PREVIEW_PREFIX = "pv-"
#: Base32 characters of the signature kept in the label: 26 x 5 = 130 bits.
SIGNATURE_CHARS = 26
#: The longest step ``preview_url`` rounds expiries up to, in seconds (see ``preview_url``).
EXPIRY_STEP = 3600
#: The latest expiry a label can carry: 7 base-36 digits (the year 4441).
MAX_EXPIRY = 36**7 - 1
PREVIEW_LABEL_RE = re.compile(
    rf"{PREVIEW_PREFIX}(?P<build>[a-z0-9]{{16}})-(?P<expiry>[1-9a-z][0-9a-z]{{0,6}})-(?P<signature>[a-z2-7]{{{SIGNATURE_CHARS}}})"
)


class PreviewDenied(Exception):
    """A preview label that grants nothing; ``reason`` is a ``PreviewDenied.Reason``, ``str()`` says what to do."""

    class Reason(enum.StrEnum):
        MALFORMED = "malformed"
        FORGED = "forged"
        EXPIRED = "expired"

    def __init__(self, reason: PreviewDenied.Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PreviewGrant:
    """What a valid preview label grants: build ``build_id`` until ``expires_at`` (aware, UTC; excluded)."""

    label: str
    build_id: str
    expires_at: datetime


def is_preview_label(label: str) -> bool:
    """Whether the content-origin host label ``label`` claims to be a preview (starts ``pv-``, any case)."""
    return label.lower().startswith(PREVIEW_PREFIX)


def preview_signature(build_id: str, expiry: int) -> str:
    """The label's signature of ``build_id`` until ``expiry`` (Unix seconds): 26 characters of ``[a-z2-7]``.

    Keyed with ``settings.SECRET_KEY``; ``parse_preview_label`` also accepts
    signatures made with ``settings.SECRET_KEY_FALLBACKS`` while keys rotate.
    """
    return _signature(build_id, expiry, settings.SECRET_KEY)


def _signature(build_id: str, expiry: int, secret: str | bytes) -> str:
    digest = salted_hmac(PREVIEW_SALT, f"{build_id}:{expiry}", secret=secret, algorithm="sha256").digest()
    return base64.b32encode(digest).decode("ascii")[:SIGNATURE_CHARS].lower()


def preview_label(build_id: str, expiry: int) -> str:
    """The preview label of ``build_id`` (``BUILD_ID_RE``) until ``expiry`` (Unix seconds, 1..``MAX_EXPIRY``).

    Raises ``ValueError`` for a malformed build id or an expiry out of that range.
    """
    if not BUILD_ID_RE.fullmatch(build_id):
        raise ValueError(f"{build_id!r} is not a build id (16 characters of a-z, 0-9)")
    if not 0 < expiry <= MAX_EXPIRY:
        raise ValueError(f"the expiry must be a Unix time from 1 to {MAX_EXPIRY}, not {expiry}")
    return f"{PREVIEW_PREFIX}{build_id}-{_base36(expiry)}-{preview_signature(build_id, expiry)}"


def preview_url(build: Build, *, now: datetime | None = None) -> str:
    """The preview address of ``build``: ``"{scheme}://pv-<build>-<expiry>-<sig>.{CONTENT_DOMAIN}[:port]/"``.

    Valid for at least ``settings.PREVIEW_LIFETIME`` seconds from ``now`` (default:
    the current time): the expiry is rounded up to a whole step of ``EXPIRY_STEP``
    seconds (or of the lifetime, if shorter), so links minted within one step share
    one origin and the browser reuses what it cached there instead of downloading
    the bundle again for each page view of the queue. Only ``build.id`` is read;
    whether the build is ready is checked when the link is opened. Raises
    ``ValueError`` if ``build.id`` is not a build id.
    """
    issued = int((now or datetime.now(UTC)).timestamp())
    lifetime = int(settings.PREVIEW_LIFETIME)
    step = min(EXPIRY_STEP, lifetime)
    expiry = -(-(issued + lifetime) // step) * step
    return content_origin(preview_label(build.id, expiry)) + "/"


def parse_preview_label(label: str, *, now: datetime | None = None) -> PreviewGrant:
    """Check the preview label ``label`` (case-insensitive, as hosts are) at ``now`` (default: the current time).

    Returns the ``PreviewGrant``. Raises ``PreviewDenied`` with ``reason``
    ``MALFORMED`` (not ``pv-<build-id>-<expiry>-<signature>``), ``FORGED`` (the
    signature is not ours for that build and expiry) or ``EXPIRED`` (``now`` is at or
    after the expiry), checked in that order, so a forged label is never called
    expired. Whether the build exists is not checked here.
    """
    label = label.lower()
    match = PREVIEW_LABEL_RE.fullmatch(label)
    if match is None:
        raise PreviewDenied(
            PreviewDenied.Reason.MALFORMED,
            "This is not a valid preview address. Copy the whole preview link again "
            "from your gallery's page or the moderation queue.",
        )
    build_id, signature = match["build"], match["signature"]
    expiry = int(match["expiry"], 36)
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    # Every key is tried (no early exit), so the time taken says nothing about which matched.
    valid = [constant_time_compare(signature, _signature(build_id, expiry, key)) for key in keys]
    if not any(valid):
        raise PreviewDenied(
            PreviewDenied.Reason.FORGED,
            "This preview link is not valid: it was changed or was not made by Glasshouse. "
            "Open the preview from your gallery's page or the moderation queue.",
        )
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if (now or datetime.now(UTC)) >= expires_at:
        raise PreviewDenied(
            PreviewDenied.Reason.EXPIRED,
            f"This preview link expired on {expires_at:%Y-%m-%d at %H:%M} UTC. "
            "Open your gallery's page or the moderation queue for a fresh link.",
        )
    return PreviewGrant(label=label, build_id=build_id, expires_at=expires_at)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while number:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
    return text or "0"
