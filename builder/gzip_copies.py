"""Gzip copies of bundle files: made once at build time, stored beside their file as ``<key>.gz``.

The content origin (``gallery.content``) answers a reader whose browser accepts gzip with the
stored copy, so nothing is compressed per request. Only compressible files get one
(``builder.storage.compressible``: text, wasm, SQLite), and only when it is at most
``GZIP_MAX_RATIO`` of the file's size. Every copy has ``mtime`` 0 and no file name: the same
input always gives the same bytes. The database's copy is started in a background thread as soon
as the canonical copy exists (``BackgroundGzip``), since for a big database it is the longest
step after the check. The copies of files many builds share (the runtime, the static files:
``builder.copy_cache.is_shared``) are made once per machine and kept in the build cache
(``cached_gzip_copy``): level 9 took 0.9 s of CPU on ``pyodide.asm.wasm`` alone, for every build
whose store lacked the runtime's copies.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from builder.bundle import BundleEntry
from builder.copy_cache import cached_copy, is_shared
from builder.storage import GZIP_SUFFIX, STORED_ZIP_SUFFIX, Storage, compressible
from builder.wheels import sha256_file

#: A gzip copy is stored only when it is at most this fraction of the file's size.
GZIP_MAX_RATIO = 0.9
#: The level of every copy but the database's.
GZIP_LEVEL = 9
#: The level of a build's own zips (its site-packages bytecode, stored entries: up to 8 MB with many
#: plugins). Measured on a 7.8 MB one: level 9 took 1.24 s of CPU for 2.79 MB, level 6 0.24 s for 2.83 MB.
ZIP_GZIP_LEVEL = 6
#: The database's gzip level. Measured on the 217 MB benchmark database (bench/make_database.py):
#: level 9 took about 4 times as long as level 6 for a copy 2 % smaller (0.368 against 0.377 of the file).
DATABASE_GZIP_LEVEL = 6
#: A lazy database's gzip level (``builder.lazy_database``): its copy serves only readers whose
#: browser lacks JSPI and accepts no Brotli. On the 217 MB benchmark database, level 1 took 2.9 s
#: of CPU for 0.37 of the file, level 6 12.3 s for 0.33; the copy is made during the build.
LAZY_DATABASE_GZIP_LEVEL = 1


class GzipCancelled(Exception):
    """A background gzip copy was stopped because the build ended first."""


def gzip_copy(source: Path, target: Path, level: int = GZIP_LEVEL, stop: threading.Event | None = None) -> int:
    """Write ``source`` gzipped to ``target`` and return the copy's size in bytes.

    ``level`` 1-9; ``mtime`` 0 and no file name in the header: the same input always gives the
    same bytes. Streams in 1 MiB chunks (a database may be 1 GB). Raises ``OSError``, and
    ``GzipCancelled`` once ``stop`` is set (``target`` removed: closing the gzip stream would
    have made a valid gzip file of the first part).
    """
    try:
        with (
            source.open("rb") as src,
            target.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0) as out,
        ):
            while chunk := src.read(1024 * 1024):
                if stop is not None and stop.is_set():
                    raise GzipCancelled(f"gzip copy of {source.name} stopped")
                out.write(chunk)
    except GzipCancelled:
        target.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def cached_gzip_path(cache_dir: Path, sha256: str) -> Path:
    """Where the gzip copy (``GZIP_LEVEL``) of a file with hex digest ``sha256`` is cached: ``cache_dir/gzip/<sha256>-<level>.gz``."""
    return cache_dir / "gzip" / f"{sha256}-{GZIP_LEVEL}{GZIP_SUFFIX}"


def cached_gzip_copy(source: Path, sha256: str, cache_dir: Path) -> Path:
    """The gzip copy of ``source`` (hex digest ``sha256``) from ``cache_dir``, made there if missing.

    Made once per machine (``cached_gzip_path``) by ``builder.copy_cache.cached_copy``: written
    atomically, a concurrent build waits for it, and a cached copy that does not decompress to
    ``source``'s bytes is made again. Raises ``OSError``.
    """
    return cached_copy(
        cached_gzip_path(cache_dir, sha256),
        lambda scratch, _stop: gzip_copy(source, scratch),
        lambda copy: _gunzips_to(copy, sha256),
    )


def _gunzips_to(copy: Path, sha256: str) -> bool:
    """Whether the gzip stream in ``copy`` decompresses to bytes whose hex sha256 is ``sha256``."""
    digest = hashlib.sha256()
    try:
        with gzip.open(copy, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return False
    return digest.hexdigest() == sha256


class BackgroundGzip:
    """Gzip copies made in one thread while the build goes on (zlib and crc32 release the GIL).

    A context manager: leaving it stops an unfinished copy (``GzipCancelled``) and waits for
    the thread, so nothing writes into a build's folder after the build has returned.
    """

    def __enter__(self) -> Self:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glasshouse-gzip")
        self._stop = threading.Event()
        self._copies: dict[Path, tuple[Path, Future[int]]] = {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, source: Path, target: Path, level: int) -> None:
        """Begin writing ``source`` gzipped (``level``) to ``target``."""
        self._copies[source] = (target, self._pool.submit(gzip_copy, source, target, level, self._stop))

    def copy(self, source: Path, target: Path, level: int = GZIP_LEVEL) -> Path:
        """The gzip copy of ``source``: the one started for it (waiting for it), else one written now at ``target`` (``level``)."""
        if source in self._copies:
            started, future = self._copies.pop(source)
            future.result()
            return started
        gzip_copy(source, target, level)
        return target


@dataclass(frozen=True)
class GzipFile:
    """The gzip copy of one bundle file: local ``path`` to store (``None``: stored already), ``size`` in bytes."""

    path: Path | None
    size: int


def gzip_copies(
    entries: Sequence[BundleEntry],
    storage: Storage,
    background: BackgroundGzip,
    folder: Path,
    build_prefix: str,
    cache_dir: Path,
    digests: dict[Path, str],
) -> dict[str, GzipFile]:
    """The gzip copies of ``entries`` that are worth storing: ``{storage key of the file: GzipFile}``.

    Where each copy comes from:

    - a shared file (outside ``build_prefix``) whose copy an earlier build stored: none is made,
      its key names its content, so the stored copy has the same bytes;
    - the other files many builds share (``builder.copy_cache.is_shared``): the cache in
      ``cache_dir`` (``cached_gzip_copy``; ``digests``: hex sha256 by local path, else computed);
    - the rest: ``folder`` (or ``background``, e.g. the database's), a zip at ``ZIP_GZIP_LEVEL``.

    Raises ``OSError`` and ``builder.storage.StorageError``.
    """
    copies: dict[str, GzipFile] = {}
    for number, entry in enumerate(entries):
        if not compressible(entry.key):
            continue
        if not entry.key.startswith(build_prefix) and storage.exists(entry.key + GZIP_SUFFIX):
            copies[entry.key] = GzipFile(None, storage.size(entry.key + GZIP_SUFFIX))
            continue
        if is_shared(entry.key, build_prefix):
            copy = cached_gzip_copy(entry.path, digests.get(entry.path) or sha256_file(entry.path), cache_dir)
        else:
            level = ZIP_GZIP_LEVEL if entry.key.endswith(STORED_ZIP_SUFFIX) else GZIP_LEVEL
            copy = background.copy(entry.path, folder / f"{number}.gz", level)
        if copy.stat().st_size <= entry.path.stat().st_size * GZIP_MAX_RATIO:
            copies[entry.key] = GzipFile(copy, copy.stat().st_size)
    return copies
