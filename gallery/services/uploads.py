"""Checking an upload and storing it privately: the rules every way in (form, new version, command) shares."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Protocol

from django.conf import settings

from builder.catalog import (
    DATASETTE_VERSIONS,
    UnknownPlugin,
    check_plugins,
)
from builder.metadata import InvalidMetadata, parse_metadata
from builder.sqlite_check import InvalidDatabase, check_header, format_megabytes
from builder.storage import StorageError
from builder.tabular import FORMATS as TABULAR_FORMATS
from builder.tabular import SNIFF_BYTES, format_of, sniff
from gallery.models import (
    DESCRIPTION_MAX_LENGTH,
    METADATA_TEXT_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Gallery,
)
from gallery.models.limits import TOO_LONG
from gallery.storage import get_storage

logger = logging.getLogger(__name__)


#: File name endings of a SQLite database upload.
DATABASE_EXTENSIONS: tuple[str, ...] = (".db", ".sqlite", ".sqlite3")
#: File name endings accepted for an upload: a database, or a file the build converts (``builder.tabular``).
ALLOWED_EXTENSIONS: tuple[str, ...] = (*DATABASE_EXTENSIONS, *TABULAR_FORMATS)
#: What to upload, in words, for refusals and form help.
ACCEPTED_FILES = "a SQLite database (.db, .sqlite, .sqlite3), a CSV or TSV file, JSON (.json, .ndjson, .jsonl) or an Excel workbook (.xlsx)"
#: Most columns full-text search may name, and the longest name (characters).
MAX_SEARCH_COLUMNS = 50
MAX_COLUMN_NAME_CHARS = 200
STORAGE_UNAVAILABLE_MESSAGE = "Storage is unavailable; your file was not saved. Try again in a few minutes."
_CHUNK = 1024 * 1024


class UploadRejected(ValueError):
    """The upload cannot be accepted. ``args[0]`` tells the publisher why and what to do."""


class StorageUnavailable(Exception):
    """The store failed while saving the upload; nothing was created. ``args[0]`` is user-facing."""


class UploadFile(Protocol):
    """What ``accept_upload`` reads: a Django ``UploadedFile`` or ``File``."""

    @property
    def size(self) -> int | None: ...

    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...
    def read(self, size: int = -1) -> bytes: ...
    def chunks(self, chunk_size: int | None = None) -> Iterable[bytes]: ...


def check_filename(filename: str) -> None:
    """Raise ``UploadRejected`` unless ``filename`` ends in one of ``ALLOWED_EXTENSIONS`` (any case)."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in ALLOWED_EXTENSIONS:
        shown = f"“{suffix}”" if suffix else "no extension"
        raise UploadRejected(f"The file has {shown}; upload {ACCEPTED_FILES}.")


def source_suffix(filename: str) -> str:
    """The ending of the stored upload's key (``uploads/<build-id>/source<suffix>``), which tells the build what
    it holds: ``".db"`` for a database, else the tabular format's own ending (``".csv"``, ``".xlsx"``...)."""
    suffix = PurePath(filename).suffix.lower()
    return suffix if format_of(filename) else ".db"


def check_size(size_bytes: int) -> None:
    """Raise ``UploadRejected`` if ``size_bytes`` is 0 or above ``UPLOAD_MAX_BYTES``."""
    if size_bytes == 0:
        raise UploadRejected(f"The file is empty. Choose {ACCEPTED_FILES}.")
    if size_bytes > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected(
            f"The file is {format_megabytes(size_bytes)}, larger than the "
            f"{format_megabytes(settings.UPLOAD_MAX_BYTES)} limit. Remove tables or rows you do not need "
            "(then VACUUM) and upload it again."
        )


def check_upload(upload: UploadFile, filename: str) -> None:
    """Check an upload's name, size and first bytes; raise ``UploadRejected`` with the first problem.

    A database's header goes through ``builder.sqlite_check.check_header``: magic bytes, page size,
    journal-mode bytes and file size = page size × page count. A CSV, TSV, JSON or Excel file's
    first bytes through ``builder.tabular.sniff`` (a workbook is a zip; text holds no NUL). Opening
    the file, and converting it, are left to the build.
    """
    check_filename(filename)
    size = upload.size if upload.size is not None else _measure(upload)
    check_size(size)
    upload.seek(0)
    fmt = format_of(filename)
    if fmt is not None:
        # The build converts it (builder.tabular); here only what plainly is not that kind of file.
        refusal = sniff(upload.read(SNIFF_BYTES), fmt)
        upload.seek(0)
        if refusal is not None:
            raise UploadRejected(refusal)
        return
    try:
        # The whole 100-byte header and the size against it (builder.sqlite_check): a truncated,
        # renamed or mangled file is refused here, before anything is stored.
        check_header(upload, size_bytes=size)  # type: ignore[arg-type]
    except InvalidDatabase as exc:
        raise UploadRejected(exc.args[0]) from exc


def _measure(upload: UploadFile) -> int:
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    return size


def check_length(what: str, value: str, limit: int) -> None:
    """Raise ``UploadRejected`` if ``value`` is longer than ``limit`` characters, naming ``what``, its length and the limit."""
    if len(value) > limit:
        raise UploadRejected(TOO_LONG.format(what=what, length=len(value), limit=limit))


def clean_settings(
    *,
    title: str,
    description: str = "",
    plugins: Iterable[str],
    visibility: str,
    datasette_version: str,
    metadata_text: str,
    database_name: str,
) -> tuple[str, list[str], dict[str, object]]:
    """Check a gallery's settings; return ``(title stripped, plugins sorted, metadata parsed)``.

    Title, description and metadata text are at most ``TITLE_MAX_LENGTH``,
    ``DESCRIPTION_MAX_LENGTH`` and ``METADATA_TEXT_MAX_LENGTH`` characters (the description
    counted stripped, as it is stored). ``metadata_text`` is YAML or JSON
    (``builder.metadata.parse_metadata``, checked against ``database_name`` and the plugins).
    Raises ``UploadRejected`` with the first problem.
    """
    title = title.strip()
    if not title:
        raise UploadRejected("Give the gallery a title.")
    check_length("title", title, TITLE_MAX_LENGTH)
    check_length("description", description.strip(), DESCRIPTION_MAX_LENGTH)
    check_length("metadata", metadata_text, METADATA_TEXT_MAX_LENGTH)
    try:
        plugins = check_plugins(list(plugins), datasette_version)
    except (UnknownPlugin, ValueError) as exc:
        raise UploadRejected(exc.args[0]) from exc
    if visibility not in Gallery.Visibility.values:
        raise UploadRejected(f"Visibility must be one of {', '.join(Gallery.Visibility.values)}.")
    if datasette_version not in DATASETTE_VERSIONS:
        raise UploadRejected(
            f"Datasette {datasette_version} is not offered; choose one of {', '.join(DATASETTE_VERSIONS)}."
        )
    try:
        metadata = parse_metadata(metadata_text, database_name=database_name, plugins=plugins)
    except InvalidMetadata as exc:
        raise UploadRejected(exc.args[0]) from exc
    return title, plugins, metadata


def clean_search_columns(columns: Iterable[str]) -> list[str]:
    """The columns full-text search should cover, as given (stripped, blanks and repeats dropped, order kept).

    Raises ``UploadRejected`` for more than ``MAX_SEARCH_COLUMNS`` names or one over
    ``MAX_COLUMN_NAME_CHARS`` characters. Whether each exists is known only once the file is
    converted: the build log says which it used.
    """
    cleaned: list[str] = []
    for column in columns:
        name = str(column).strip()
        if name and name not in cleaned:
            check_length("column name", name, MAX_COLUMN_NAME_CHARS)
            cleaned.append(name)
    if len(cleaned) > MAX_SEARCH_COLUMNS:
        raise UploadRejected(f"Name at most {MAX_SEARCH_COLUMNS} columns for full-text search, not {len(cleaned)}.")
    return cleaned


def store_upload(upload: UploadFile, key: str) -> tuple[str, int]:
    """Put ``upload`` at ``key``; return ``(sha256 hex, size in bytes)``. Raises ``StorageUnavailable``."""
    storage = get_storage()
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    temporary_path = getattr(upload, "temporary_file_path", None)
    try:
        if callable(temporary_path):
            # Django already spooled it to disk (FILE_UPLOAD_MAX_MEMORY_SIZE = 0): hash in place.
            path = Path(temporary_path())
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    digest.update(chunk)
                    size += len(chunk)
            storage.put_file(key, path)
        else:
            with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR, suffix=".db") as spool:
                for chunk in upload.chunks(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    spool.write(chunk)
                spool.flush()
                storage.put_file(key, Path(spool.name))
    except StorageError as exc:
        logger.error("could not store upload at %s: %s", key, exc)
        forget_upload(key)
        raise StorageUnavailable(STORAGE_UNAVAILABLE_MESSAGE) from exc
    return digest.hexdigest(), size


def forget_upload(key: str) -> None:
    """Best effort: remove whatever was stored under the upload's folder."""
    try:
        get_storage().delete_prefix(key.rsplit("/", 1)[0] + "/")
    except (StorageError, OSError) as exc:
        logger.warning("could not remove %s after a failed upload: %s", key, exc)
