"""The app's models, one module per concern; Django and the migrations import them from here.

- ``states``: the enums of moderation, build states and reviews;
- ``ids``, ``limits``: ids, database names, and length limits;
- ``galleries``: ``Gallery`` and the query rules about galleries;
- ``builds``: ``Build``, the settings it bakes in, and which builds may be served;
- ``publishers``: trusted publishers;
- ``records``: readers' reports, the audit log, and which reports a moderator has not seen.
"""

from gallery.models.builds import BUNDLED_SETTINGS, Build, BuildQuerySet, approved_build
from gallery.models.galleries import Gallery, GalleryQuerySet, Submission, asks_not_to_be_indexed, bundled_settings
from gallery.models.ids import BUILD_ID_RE, GALLERY_ID_RE, database_name_for, new_build_id, new_gallery_id
from gallery.models.limits import (
    DESCRIPTION_MAX_LENGTH,
    METADATA_TEXT_MAX_LENGTH,
    MODERATION_REASON_MAX_LENGTH,
    REPORT_DETAILS_MAX_LENGTH,
    TITLE_MAX_LENGTH,
)
from gallery.models.publishers import MODERATORS_GROUP, Actor, Publisher, is_trusted, signed_in
from gallery.models.records import DECISIONS, AppendOnly, AuditEvent, Report, hash_ip, unreviewed_reports
from gallery.models.states import FINAL_STATES, PROGRESS_STATES, Approval, BuildReview, BuildState, ModerationState

__all__ = [
    "BUILD_ID_RE",
    "BUNDLED_SETTINGS",
    "DECISIONS",
    "DESCRIPTION_MAX_LENGTH",
    "FINAL_STATES",
    "GALLERY_ID_RE",
    "METADATA_TEXT_MAX_LENGTH",
    "MODERATION_REASON_MAX_LENGTH",
    "MODERATORS_GROUP",
    "PROGRESS_STATES",
    "REPORT_DETAILS_MAX_LENGTH",
    "TITLE_MAX_LENGTH",
    "Actor",
    "AppendOnly",
    "Approval",
    "AuditEvent",
    "Build",
    "BuildQuerySet",
    "BuildReview",
    "BuildState",
    "Gallery",
    "GalleryQuerySet",
    "ModerationState",
    "Publisher",
    "Report",
    "Submission",
    "approved_build",
    "asks_not_to_be_indexed",
    "bundled_settings",
    "database_name_for",
    "hash_ip",
    "is_trusted",
    "new_build_id",
    "new_gallery_id",
    "signed_in",
    "unreviewed_reports",
]  # fmt: skip
