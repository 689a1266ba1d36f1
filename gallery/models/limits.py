"""Length limits of what people type: the columns, the forms and the services agree on these."""

from __future__ import annotations

#: What a text over its limit is told, filled in by ``services.uploads.check_length`` and the forms'
#: ``too_long`` (``what``: "title", "description"...; ``length`` and ``limit`` in characters).
TOO_LONG = "The {what} has {length} characters; shorten it to at most {limit} characters."

#: Longest gallery title (characters): forms, ``services.uploads.clean_settings`` and the column agree.
TITLE_MAX_LENGTH = 200
#: Longest gallery description (characters).
DESCRIPTION_MAX_LENGTH = 5000
#: Longest Datasette metadata text a publisher may send, YAML or JSON (characters); stored parsed.
METADATA_TEXT_MAX_LENGTH = 100_000
#: Longest details of a reader's report (characters).
REPORT_DETAILS_MAX_LENGTH = 5000
#: Longest reason a moderator gives for a rejection or takedown (characters); the publisher reads it.
MODERATION_REASON_MAX_LENGTH = 2000
