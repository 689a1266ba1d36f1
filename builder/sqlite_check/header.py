"""Before opening: the SQLite header and the file's size, checked in pure Python (no SQLite).

Cheap, so the web request runs it too (``gallery.services``), and the build's check runs it
again before its child process opens the file (sqlite.org/fileformat.html, 1.3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html, 1.3).
SQLITE_HEADER = b"SQLite format 3\x00"
#: Length of the database header in bytes.
HEADER_BYTES = 100
#: What a refusal asks the publisher to do when the file itself is broken.
UPLOAD_INTACT = (
    "Upload the complete, intact file: check that the copy or download finished, or export a fresh copy "
    "(`sqlite3 your.db .recover` can rescue a damaged one)."
)
#: File signatures of things people upload by mistake, for a kinder "this is not SQLite".
_LOOKS_LIKE = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (also what .xlsx, .docx and .ods files are)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


class InvalidDatabase(ValueError):
    """The file is not a usable SQLite database. ``args[0]`` says why and what to do, for the publisher.

    ``detail`` holds text for the build log only (a child's error output), or ``""``.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class HeaderInfo:
    """What the 100-byte header says: page size in bytes, number of pages, and whether it is WAL mode."""

    page_size: int
    page_count: int
    wal: bool


def format_megabytes(size_bytes: int) -> str:
    """Return ``size_bytes`` in MB (1 MB = 1024 * 1024 bytes), e.g. ``"100 MB"`` or ``"1.5 MB"``."""
    megabytes = size_bytes / (1024 * 1024)
    return f"{megabytes:.0f} MB" if megabytes == int(megabytes) else f"{megabytes:.1f} MB"


def _not_sqlite(head: bytes) -> InvalidDatabase:
    stripped = head.lstrip().lower()
    kind = next((label for magic, label in _LOOKS_LIKE if head.startswith(magic)), None)
    if kind is None and stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<")):
        kind = "an HTML or XML page"
    found = f"it looks like {kind}, " if kind else "its first bytes are not the SQLite header, "
    return InvalidDatabase(
        f"This is not a SQLite database: {found}whatever its name says. "
        "Export your data as SQLite (for example with sqlite-utils or the sqlite3 shell) and upload that file."
    )


def check_header(fileobj: BinaryIO, *, size_bytes: int | None = None, max_bytes: int | None = None) -> HeaderInfo:
    """Check the SQLite header of ``fileobj`` (an open binary file) and its size; return ``HeaderInfo``.

    Reads the first 100 bytes from the current position and seeks back to it. ``size_bytes``
    is the file's size (default: measured by seeking to the end); ``max_bytes`` the size cap
    (``None``: none). Raises ``InvalidDatabase`` if the file is empty or over the cap, if it
    does not start with ``SQLite format 3\\0``, if the page size (bytes 16-17, 1 meaning 65536)
    is not a power of two from 512 to 65536, if the write and read versions (bytes 18 and 19)
    are not both 1 (rollback journal) or both 2 (WAL), or if the size is not page size ×
    page count (bytes 28-31, trusted only when the change counter at 24 equals the
    version-valid-for number at 92; otherwise the size must be a whole number of pages).
    """
    start = fileobj.tell()
    if size_bytes is None:
        size_bytes = fileobj.seek(0, os.SEEK_END) - start
    fileobj.seek(start)
    head = fileobj.read(HEADER_BYTES)
    fileobj.seek(start)
    if not head or size_bytes == 0:
        raise InvalidDatabase(
            "The file is empty. Choose your SQLite database file (.db, .sqlite, .sqlite3) and upload it again."
        )
    if max_bytes is not None and size_bytes > max_bytes:
        raise InvalidDatabase(
            f"The file is {format_megabytes(size_bytes)}, larger than the {format_megabytes(max_bytes)} limit. "
            "Remove tables or rows you do not need (then VACUUM) and upload it again."
        )
    if not head.startswith(SQLITE_HEADER):
        raise _not_sqlite(head)
    if len(head) < HEADER_BYTES or size_bytes < HEADER_BYTES:
        raise InvalidDatabase(f"The file is cut short: it ends inside the 100-byte SQLite header. {UPLOAD_INTACT}")
    raw_page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    if not (512 <= page_size <= 65536 and page_size & (page_size - 1) == 0):
        raise InvalidDatabase(
            f"The header's page size ({raw_page_size}) is not a power of two between 512 and 65536, "
            f"so the file is damaged. {UPLOAD_INTACT}"
        )
    write_version, read_version = head[18], head[19]
    if (write_version, read_version) not in ((1, 1), (2, 2)):
        raise InvalidDatabase(
            f"The header's file-format bytes (write version {write_version}, read version {read_version}) "
            "must both be 1 (rollback journal) or both be 2 (WAL), so the file is damaged or was made by a "
            f"program that does not write standard SQLite. {UPLOAD_INTACT}"
        )
    change_counter, valid_for = head[24:28], head[92:96]
    header_pages = int.from_bytes(head[28:32], "big")
    if header_pages and change_counter == valid_for:
        expected = page_size * header_pages
        if size_bytes != expected:
            how = "cut short" if size_bytes < expected else "longer than its header says"
            raise InvalidDatabase(
                f"The file is {how}: its header says {header_pages:,} pages of {page_size:,} bytes "
                f"({expected:,} bytes), but the file has {size_bytes:,} bytes. {UPLOAD_INTACT}"
            )
        page_count = header_pages
    else:
        # Written by a SQLite older than 3.7.0 (or the header's count is stale): the size decides.
        if size_bytes % page_size:
            raise InvalidDatabase(
                f"The file is cut short or damaged: its {size_bytes:,} bytes are not a whole number of "
                f"{page_size:,}-byte pages. {UPLOAD_INTACT}"
            )
        page_count = size_bytes // page_size
    return HeaderInfo(page_size=page_size, page_count=page_count, wal=write_version == 2)


def check_file(path: Path, max_bytes: int | None = None) -> HeaderInfo:
    """``check_header`` on the file at ``path``, with its size from the file system."""
    with Path(path).open("rb") as fh:
        return check_header(fh, size_bytes=os.fstat(fh.fileno()).st_size, max_bytes=max_bytes)
