"""Which build a content-origin label serves, or why none: moderation first, for every build; a preview's signature."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from gallery.content.pages import no_gallery, notice_page
from gallery.content.preview import PreviewDenied, parse_preview_label
from gallery.models import (
    Build,
    BuildReview,
    BuildState,
    Gallery,
    approved_build,
    asks_not_to_be_indexed,
)
from gallery.origins import parse_content_label

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedBuild:
    """The build a content-origin request is answered from.

    ``label`` is the host's first label; ``build_id`` is the live build on a gallery's
    own origin, or the pinned build on ``<gallery-id>--<build-id>`` and on a preview
    origin; ``hidden`` asks crawlers not to index it; ``preview``: a signed preview
    origin (``gallery.content.preview``), whose bootstrap page and worker are never stored and
    carry no oEmbed discovery; ``unlisted``: the gallery's visibility now, which makes
    every answer ``Referrer-Policy: no-referrer``.
    """

    label: str
    gallery_id: str
    title: str
    build_id: str
    pinned: bool
    hidden: bool
    preview: bool = False
    unlisted: bool = False


@dataclass(frozen=True)
class Unserved:
    """Why a content-origin label serves no build: ``response`` (404, 403, 410 or 503) answers
    every path, and with ``killswitch`` its ``/sw.js`` is the kill-switch worker instead."""

    response: HttpResponseBase
    killswitch: bool


def gone(response: HttpResponseBase) -> Unserved:
    """``response`` for every path, and the kill switch for ``/sw.js``."""
    return Unserved(response, killswitch=True)


def resolve(request: HttpRequest, label: str) -> ServedBuild | Unserved:
    """Find the build ``label`` serves, or why there is none (404, or 410 after a takedown)."""
    parsed = parse_content_label(label)
    if parsed is None:
        return gone(no_gallery())
    gallery_id, pinned_id = parsed
    row = (
        Gallery.objects.filter(pk=gallery_id)
        .values_list("moderation_state", "live_build_id", "visibility", "held_at")
        .first()
    )
    if row is None:
        return gone(no_gallery())
    moderation_state, live, visibility, held_at = row
    # A takedown or deletion covers the live origin and every pinned one, whatever build the label names.
    if moderation_state == Gallery.ModerationState.TAKEN_DOWN:
        return gone(notice_page(410, "Gone", "This gallery was taken down."))
    if moderation_state == Gallery.ModerationState.DELETED:
        return gone(notice_page(410, "Gone", "This gallery was deleted by its publisher."))
    if held_at is not None:
        return gone(
            notice_page(404, "Held for review", "Readers reported this gallery; it is hidden while a moderator reviews it.")
        )
    if moderation_state != Gallery.ModerationState.APPROVED or live is None:
        return gone(notice_page(404, "Not published", "This gallery is not published (yet)."))
    # Only an approved build is ever served: a pinned origin of a build nobody approved (a new
    # version waiting for review, an old upload a moderator never saw) is as unknown here as a
    # build that never existed.
    build = approved_build(gallery_id, pinned_id or live)
    if build is None:
        return gone(
            notice_page(
                404,
                "No such version",
                "This gallery has no published version at this address. "
                "Open the gallery's own address for its latest version.",
            )
        )
    return ServedBuild(
        label=label,
        gallery_id=gallery_id,
        title=build.title,
        build_id=build.pk,
        pinned=pinned_id is not None,
        # Pinned copies ask not to be indexed too: the live origin is the one to index.
        hidden=asks_not_to_be_indexed(visibility, build.plugins) or pinned_id is not None,
        unlisted=visibility == Gallery.Visibility.UNLISTED,
    )


def resolve_preview(label: str) -> ServedBuild | Unserved:
    """The build a preview label serves (any moderation state), or why not: 403 (a bad label;
    an expired one also gets the kill switch), 404 or 410.

    A preview ends (410, kill switch) when the gallery is taken down or deleted, or the build
    was rejected (its gallery rejected while it existed) or its files removed; a corrected
    version uploaded after a rejection is pending, and previewable.
    """
    try:
        grant = parse_preview_label(label)
    except PreviewDenied as denied:
        # The build id only: the rest of a label may be a capability.
        logger.info("preview refused (%s): %s…", denied.reason, label[:19])
        # An expired link was valid once, so a reader may have its worker installed: end it.
        expired = denied.reason == PreviewDenied.Reason.EXPIRED
        return Unserved(notice_page(403, "Preview link not valid", str(denied)), killswitch=expired)
    row = (
        Build.objects.filter(pk=grant.build_id)
        .values_list("gallery_id", "state", "files_deleted", "review", "gallery__moderation_state", "bundle_settings")
        .first()
    )
    if row is None:
        return gone(notice_page(404, "No such version", "This preview's version no longer exists."))
    gallery_id, state, files_deleted, review, moderation_state, bundle_settings = row
    # A takedown or deletion covers every origin of the gallery, previews too, even while its
    # files are still being removed (after commit) or could not be; so does a rejection for the
    # builds it rejected.
    if moderation_state == Gallery.ModerationState.TAKEN_DOWN:
        return gone(notice_page(410, "Gone", "This gallery was taken down."))
    if moderation_state == Gallery.ModerationState.DELETED:
        return gone(notice_page(410, "Gone", "This gallery was deleted by its publisher."))
    if review == BuildReview.REJECTED or files_deleted:
        return gone(
            notice_page(
                410,
                "Gone",
                "A moderator rejected this version, or its files were removed. "
                "Upload a corrected version and preview that one.",
            )
        )
    if state != BuildState.READY:
        return gone(
            notice_page(
                404,
                "Not ready",
                "This version has not finished building: open its build page, and the preview once it is ready.",
            )
        )
    return ServedBuild(
        label=grant.label,
        gallery_id=gallery_id,
        title=str((bundle_settings or {}).get("title", "")),
        build_id=grant.build_id,
        pinned=True,
        hidden=True,
        preview=True,
        unlisted=True,
    )
