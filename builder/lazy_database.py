"""Lazy databases: a big database is read in the reader's browser block by block, as queries need it.

A build whose database is at least ``BuildRequest.lazy_database_min_bytes`` long publishes a
list of the sha256 of every ``BLOCK_BYTES`` block of it (``write_block_hashes``) beside the
database, and leaves the database out of what a reader downloads first. Where the browser can
suspend WebAssembly on a promise (JSPI: ``WebAssembly.Suspending``; Chromium 137+ and Firefox ESR 153 here), the runtime
opens the database through a SQLite VFS whose reads fetch the blocks they touch with HTTP range
requests and check each against this list (builder/runtime/reader/js/lazy-database.mjs). Where it
cannot, or the server answers no range, the runtime downloads the whole database as before,
checked against its whole-file integrity.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes per block a reader's browser fetches and checks: one range request each. SQLite's pages
#: (4 KiB by default, 64 KiB at most) never straddle two blocks, since pages are aligned.
BLOCK_BYTES = 64 * 1024
#: The block hash list's file name, beside the database (``data/<stem>.blocks.sha256``).
BLOCK_HASHES_SUFFIX = ".blocks.sha256"


def block_hashes_name(database: Path) -> str:
    """The block hash list's file name for ``database``: ``<stem>.blocks.sha256``."""
    return database.stem + BLOCK_HASHES_SUFFIX


def write_block_hashes(database: Path, out: Path, block_bytes: int = BLOCK_BYTES) -> int:
    """Write the sha256 digest of each ``block_bytes`` block of ``database`` to ``out``; return the block count.

    ``out`` holds the raw 32-byte digests one after another, block 0 first (the last block may
    be shorter than ``block_bytes``; its digest is of the bytes it has). An empty file has no
    block. Raises ``OSError`` if either file cannot be read or written.
    """
    count = 0
    with database.open("rb") as source, out.open("wb") as sink:
        while block := source.read(block_bytes):
            sink.write(hashlib.sha256(block).digest())
            count += 1
    return count


def is_lazy(size: int, min_bytes: int | None) -> bool:
    """Whether a database of ``size`` bytes is read lazily: ``min_bytes`` set and reached."""
    return min_bytes is not None and size >= min_bytes
