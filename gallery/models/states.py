"""The states of galleries and builds, as enums the models, services and templates share."""

from __future__ import annotations

from django.db import models


class ModerationState(models.TextChoices):
    """A gallery's moderation state (``Gallery.moderation_state``; DESIGN.md, "Moderation invariant")."""

    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    TAKEN_DOWN = "taken_down", "Taken down"
    #: A tombstone: the row stays so the id is never reused; its origins answer 410.
    DELETED = "deleted", "Deleted"


class BuildState(models.TextChoices):
    """Where a build is: ``queued -> validating -> resolving -> bundling -> uploading -> ready``."""

    QUEUED = "queued", "Queued"
    VALIDATING = "validating", "Validating the database"
    RESOLVING = "resolving", "Resolving Datasette and plugins"
    BUNDLING = "bundling", "Writing the bundle"
    UPLOADING = "uploading", "Uploading the bundle"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


#: States a build never leaves.
FINAL_STATES: tuple[str, ...] = (
    BuildState.READY,
    BuildState.FAILED,
    BuildState.CANCELLED,
)
#: The happy path, in order, as shown on the build page.
PROGRESS_STATES: tuple[str, ...] = (
    BuildState.QUEUED,
    BuildState.VALIDATING,
    BuildState.RESOLVING,
    BuildState.BUNDLING,
    BuildState.UPLOADING,
    BuildState.READY,
)


class BuildReview(models.TextChoices):
    """A build's moderation: only an ``approved`` build is ever served on a public address.

    ``pending``: nobody vouched for it yet (a moderator must look at it); ``approved``: a
    moderator approved it after review, or it was built for someone who publishes without
    review (``Build.approval`` says which); ``rejected``: the gallery was rejected while this
    build existed, so it is never served again, even if the gallery is approved later.
    """

    PENDING = "pending", "Waiting for review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Approval(models.TextChoices):
    """Who vouched for an approved build (``Build.approval``)."""

    MODERATOR = "moderator", "Approved by a moderator after review"
    TRUSTED = "trusted", "Published by a trusted publisher or staff"
    OPERATOR = "operator", "Published by the operator (manage.py publish)"
    AUTOMATIC = "automatic", "Approved automatically (GALLERY_AUTO_APPROVE)"
    REBUILD = "rebuild", "A moderator's rebuild of an approved build, with its source and settings"
    MIGRATED = "migrated", "Served before approval was recorded per build (migration 0011)"
