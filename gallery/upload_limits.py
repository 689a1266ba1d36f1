"""How upload requests are read: the size cap while the body arrives, one file per request.

``CappedUploadHandler`` is Django's only upload handler (``FILE_UPLOAD_HANDLERS``). It spools
the file to ``FILE_UPLOAD_TEMP_DIR`` like ``TemporaryFileUploadHandler`` and counts its bytes as
they arrive: past ``UPLOAD_MAX_BYTES`` it removes the partial file and skips the rest of that
part, so no more than the cap is ever written to disk, whatever the request's
``Content-Length`` said. A second file part is skipped the same way. Either way the other form
fields are still read, so the form can be shown again with what the publisher typed, and the
handler leaves an ``UploadRefusal`` on the request for the view (``refusal_after_reading``).

Views that take uploads call ``refusal_before_reading`` first (before anything reads
``request.POST``, so they are ``csrf_exempt`` and check CSRF after it): a body that says it is
too large, or that does not say its length, is refused without reading a byte of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import HttpRequest

from builder.sqlite_check import format_megabytes
from gallery.services import uploads

#: Attribute of the request where ``CappedUploadHandler`` leaves its ``UploadRefusal``.
REFUSAL_ATTRIBUTE = "glasshouse_upload_refusal"


@dataclass(frozen=True)
class UploadRefusal:
    """Why an upload request was refused: HTTP ``status``, the form ``field`` concerned
    (``"file"`` or ``"__all__"``) and a ``message`` for the publisher saying what to do."""

    status: int
    field: str
    message: str


def too_large_message() -> str:
    """The refusal of a file over ``UPLOAD_MAX_BYTES`` (the limit in MB, and what to do)."""
    return (
        f"The file is larger than the {format_megabytes(settings.UPLOAD_MAX_BYTES)} limit, so it was "
        "not uploaded. Remove tables or rows you do not need (then VACUUM) and upload it again; "
        "the rest of the form is kept."
    )


#: The refusal of a request with more than one file.
ONE_FILE_MESSAGE = (
    "Upload one SQLite database at a time: this request held more than one file, so none was kept. "
    "Choose a single file and send the form again."
)

#: The refusal of a body sent without a Content-Length (chunked transfer encoding).
LENGTH_REQUIRED_MESSAGE = (
    "The upload did not say its size (no Content-Length header; chunked uploads are not accepted). "
    "Upload the file through the form in a browser, or with a client that sends Content-Length."
)


def refusal_before_reading(
    request: HttpRequest, rate_limits: Sequence[tuple[Callable[[], bool], Callable[[], str]]] = ()
) -> UploadRefusal | None:
    """Refuse an upload's POST from its headers alone, before its body is read; ``None`` if it may be read.

    The one sequence of every upload form (publish, new version): first each of ``rate_limits``
    in order, ``(over, message)``: 429 with ``message()`` for the first whose ``over()`` is true
    (later ones are not asked, so their counters do not move); then 411 without a valid
    ``Content-Length`` (Django would read nothing of such a body, and the publisher would only
    see "choose a file"); 413 when the declared body exceeds ``UPLOAD_MAX_BYTES`` plus
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (the form fields' allowance), with the declared size in MB.
    Bodies within that may still hold a file over the cap: ``CappedUploadHandler`` stops those
    while they are read.
    """
    for over, message in rate_limits:
        if over():
            return UploadRefusal(429, "__all__", message())
    declared = request.META.get("CONTENT_LENGTH", "")
    if not str(declared).strip().isdigit():
        return UploadRefusal(411, "file", LENGTH_REQUIRED_MESSAGE)
    if int(declared) > settings.UPLOAD_MAX_BYTES + (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0):
        try:
            uploads.check_size(int(declared))
        except uploads.UploadRejected as exc:
            return UploadRefusal(413, "file", exc.args[0])
    return None


def refusal_after_reading(request: HttpRequest) -> UploadRefusal | None:
    """The ``UploadRefusal`` ``CappedUploadHandler`` left on ``request`` while reading it, if any.

    Reads the body (``request.FILES``) if nothing has yet.
    """
    request.FILES  # noqa: B018 - parsing the body is what runs the handler
    return getattr(request, REFUSAL_ATTRIBUTE, None)


def show_refusal(form: forms.Form, refusal: UploadRefusal) -> None:
    """Make ``refusal.message`` the only error of ``refusal.field`` on ``form``, bound or not.

    A bound form is validated first, so the other fields' own errors show too.
    """
    form.is_valid()
    nonfield = refusal.field == NON_FIELD_ERRORS
    form.errors[refusal.field] = form.error_class([refusal.message], error_class="nonfield" if nonfield else None)


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Spool the request's one file to ``FILE_UPLOAD_TEMP_DIR``, at most ``UPLOAD_MAX_BYTES`` of it.

    Past the cap, or at a second file part, the partial file is closed and removed, the
    rest of the part is skipped (``SkipFile``: read, not stored) and an ``UploadRefusal``
    (413 or 400) is left on the request; the first refusal wins.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.files_seen = 0

    def _refuse(self, refusal: UploadRefusal) -> None:
        if self.request is not None and getattr(self.request, REFUSAL_ATTRIBUTE, None) is None:
            setattr(self.request, REFUSAL_ATTRIBUTE, refusal)
        self._discard_partial_file()
        raise SkipFile(refusal.message)

    def _discard_partial_file(self) -> None:
        """Close and delete the file being spooled, if any (Django only closes files it completed)."""
        partial = self.__dict__.pop("file", None)
        if partial is None:
            return
        path = partial.temporary_file_path()
        partial.close()
        try:
            os.remove(path)
        except FileNotFoundError:
            pass  # closing a NamedTemporaryFile already removed it

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        """Start spooling a file part; refuse a second one (400)."""
        self.files_seen += 1
        if self.files_seen > 1:
            # The first file is complete and in request.FILES; Django closes it with the request.
            self.__dict__.pop("file", None)
            self._refuse(UploadRefusal(400, "file", ONE_FILE_MESSAGE))
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        """Write ``raw_data`` (which begins at byte ``start`` of the file) unless it crosses the cap (413)."""
        if start + len(raw_data) > settings.UPLOAD_MAX_BYTES:
            self._refuse(UploadRefusal(413, "file", too_large_message()))
        return super().receive_data_chunk(raw_data, start)

    def upload_interrupted(self) -> None:
        """The body ended inside the file part (the client went away): remove the partial file."""
        self._discard_partial_file()
