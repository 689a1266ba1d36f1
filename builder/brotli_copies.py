"""Brotli copies of bundle files: made at build time, stored beside their file as ``<key>.br``.

The content origin (``gallery.content``) answers a reader whose browser accepts Brotli (every
current browser over HTTPS) with the stored copy, as it does with the gzip copies
(``builder.gzip_copies``). A compressible file (``builder.storage.compressible``) gets one only
where it wins: smaller than its gzip copy, or, for a file without one, at most
``GZIP_MAX_RATIO`` of its size. The manifest records it as the file's ``brotli``.

Qualities, measured with ``bench/compression.py`` (README, Performance):

- ``SHARED_QUALITY`` (11, the best, unless ``SHARED_BROTLI_QUALITY`` in the environment says
  otherwise: ``shared_quality``) for the shared runtime files (``runtime/...``: Pyodide's
  wasm and JavaScript) and Datasette's static files. Quality 11 made ``pyodide.asm.wasm``
  2.74 MB against gzip's 3.53 MB, but took about 50 s of CPU; quality 9 made 3.10 MB in about
  3 s. These files are the same for every build (the static files for every build with the
  same Datasette and plugins), so each is compressed once per machine and kept in the build
  cache (``cached_brotli_copy``, beside the compiled standard library), and a shared one not
  at all once the store holds its ``.br``;
- ``BUILD_FILE_QUALITY`` (11) for the build's other text files (its pages, config, lock file
  and runtime modules): about 0.3 s of CPU for all of them;
- ``DATABASE_QUALITY`` (5) for the database, made in a background thread like its gzip copy:
  a 50 MB database took 2.2 s of CPU for 0.294 of its size, against gzip level 6's 3.2 s for
  0.330 (quality 11 would take minutes).

A copy is a plain Brotli stream (default window): the same input and quality always give the
same bytes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import brotli

from builder.bundle import BundleEntry
from builder.copy_cache import cached_copy, is_shared
from builder.gzip_copies import GZIP_MAX_RATIO, GzipFile
from builder.storage import BROTLI_SUFFIX, STORED_ZIP_SUFFIX, Storage, compressible, content_type_for
from builder.wheels import sha256_file


def shared_quality(environ: Mapping[str, str] = os.environ) -> int:
    """The quality (0-11) of the shared files' copies: ``SHARED_BROTLI_QUALITY`` in ``environ``, else 11.

    Every process that builds reads it, whichever way it was started (a Celery worker, a test, a
    benchmark). The test suite sets 9 (``tests/conftest.py``; README, "Configuration"): for the 37 MB a test run compresses, a new
    test machine then spends 3.4 s of CPU instead of 64 (6 December), and the copies still decode to the same
    bytes. Raises ``ValueError`` naming the variable if it is not an integer from 0 to 11.
    """
    value = environ.get("SHARED_BROTLI_QUALITY", "").strip()
    if not value:
        return 11
    if not (value.isdigit() and 0 <= int(value) <= 11):
        raise ValueError(f"SHARED_BROTLI_QUALITY must be an integer from 0 to 11 (Brotli's qualities), not {value!r}")
    return int(value)


#: Quality of the shared runtime files' copies (made once per machine, cached): ``shared_quality()``.
SHARED_QUALITY = shared_quality()
#: Quality of the build's own files other than the database.
BUILD_FILE_QUALITY = 11
#: Quality of a build's own zips (its site-packages bytecode, stored entries): measured on a 7.8 MB
#: one, 2.40 MB in 0.25 s of CPU, against 2.01 MB in 16 s at quality 11 and 3.20 MB deflated entry by entry.
ZIP_QUALITY = 5
#: Quality of the database's copy.
DATABASE_QUALITY = 5
#: Quality of a lazy database's copy (``builder.lazy_database``), which serves only readers whose
#: browser lacks JSPI. On the 217 MB benchmark database: quality 2 took 2.6 s of CPU for 70.3 MB,
#: quality 5 7.2 s for 63.5 MB (gzip level 1: 80.5 MB); the copy is made during the build.
LAZY_DATABASE_QUALITY = 2
#: The database's content type (``builder.storage.CONTENT_TYPES``): its copy is made at ``DATABASE_QUALITY``, never cached.
DATABASE_TYPE = "application/vnd.sqlite3"
_CHUNK = 1024 * 1024


class BrotliCancelled(Exception):
    """A Brotli copy was stopped because the build ended first."""


def brotli_copy(source: Path, target: Path, quality: int, stop: threading.Event | None = None) -> int:
    """Write ``source`` Brotli-compressed at ``quality`` (0-11) to ``target``; return the copy's size in bytes.

    Streams in 1 MiB chunks (a database may be 1 GB); the compressor releases the GIL, so a
    copy made in a thread leaves the build's own thread running. Raises ``OSError``, and
    ``BrotliCancelled`` once ``stop`` is set (``target`` removed).
    """
    compressor = brotli.Compressor(quality=quality)
    try:
        with source.open("rb") as src, target.open("wb") as out:
            while chunk := src.read(_CHUNK):
                if stop is not None and stop.is_set():
                    raise BrotliCancelled(f"Brotli copy of {source.name} stopped")
                out.write(compressor.process(chunk))
            out.write(compressor.finish())
    except BrotliCancelled:
        target.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def cached_path(cache_dir: Path, sha256: str, quality: int) -> Path:
    """Where the Brotli copy of a file with hex digest ``sha256`` at ``quality`` is cached: ``cache_dir/brotli/<sha256>-q<quality>.br``."""
    return cache_dir / "brotli" / f"{sha256}-q{quality}{BROTLI_SUFFIX}"


def _decodes_to(copy: Path, sha256: str) -> bool:
    """Whether the Brotli stream in ``copy`` decompresses to bytes whose hex sha256 is ``sha256``."""
    decompressor = brotli.Decompressor()
    digest = hashlib.sha256()
    try:
        with copy.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(decompressor.process(chunk))
        return decompressor.is_finished() and digest.hexdigest() == sha256
    except brotli.error:
        return False


def cached_brotli_copy(
    source: Path, sha256: str, cache_dir: Path, quality: int = SHARED_QUALITY, stop: threading.Event | None = None
) -> Path:
    """The Brotli copy of ``source`` (hex digest ``sha256``) at ``quality`` from ``cache_dir``, made there if missing.

    For the shared runtime files, the same for every build: made once per machine
    (``cached_path``), written atomically; a concurrent build on the same machine waits for
    the first (``builder.copy_cache.cached_copy``) instead of compressing again, and stops waiting
    once ``stop`` is set. A cached copy that does not decompress to ``source``'s bytes (a damaged
    cache) is made again. Raises ``OSError``, and ``BrotliCancelled`` once ``stop`` is set.
    """
    return cached_copy(
        cached_path(cache_dir, sha256, quality),
        lambda scratch, stop: brotli_copy(source, scratch, quality, stop),
        lambda copy: _decodes_to(copy, sha256),
        stop,
        BrotliCancelled,
    )


class BackgroundBrotli:
    """Brotli copies made in two threads while the build goes on (the compressor releases the GIL).

    ``start`` a copy (``make``: called with the stop event, returns the copy's path); ``result``
    waits for it. A context manager: leaving it stops
    unfinished copies (``BrotliCancelled``) and waits for the threads, so nothing writes into a
    build's folder after the build has returned.
    """

    def __enter__(self) -> Self:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="glasshouse-brotli")
        self._stop = threading.Event()
        self._copies: dict[Path, Future[Path]] = {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, source: Path, make: Callable[[threading.Event], Path]) -> None:
        """Begin making ``source``'s copy with ``make`` (once: a second start for it is ignored)."""
        if source not in self._copies:
            self._copies[source] = self._pool.submit(make, self._stop)

    def result(self, source: Path) -> Path:
        """The copy started for ``source``, waiting for it; raises what making it raised (``KeyError``: none started)."""
        return self._copies.pop(source).result()


@dataclass(frozen=True)
class BrotliFile:
    """The Brotli copy of one bundle file: local ``path`` to store (``None``: stored already), ``size`` in bytes."""

    path: Path | None
    size: int


def cached_maker(source: Path, sha256: str, cache_dir: Path) -> Callable[[threading.Event], Path]:
    """``BackgroundBrotli``'s ``make`` for a file whose copy is cached: ``cached_brotli_copy`` at ``SHARED_QUALITY``."""
    return lambda stop: cached_brotli_copy(source, sha256, cache_dir, SHARED_QUALITY, stop)


def file_maker(source: Path, target: Path, quality: int) -> Callable[[threading.Event], Path]:
    """``BackgroundBrotli``'s ``make`` for a build's own file: ``brotli_copy`` to ``target``."""

    def make(stop: threading.Event) -> Path:
        brotli_copy(source, target, quality, stop)
        return target

    return make


def start_shared_copies(
    entries: Sequence[BundleEntry], storage: Storage, background: BackgroundBrotli, cache_dir: Path
) -> None:
    """Start, in ``background``, the cached copies of the shared compressible ``entries`` whose ``.br`` the store lacks.

    So a build on a machine whose cache lacks them (its first on this runtime) compresses them
    while it checks the database and boots the bundle, not after. Raises ``OSError`` and
    ``builder.storage.StorageError``.
    """
    for entry in entries:
        if compressible(entry.key) and not storage.exists(entry.key + BROTLI_SUFFIX):
            background.start(entry.path, cached_maker(entry.path, sha256_file(entry.path), cache_dir))


def brotli_copies(
    entries: Sequence[BundleEntry],
    gzipped: dict[str, GzipFile],
    digests: dict[Path, str],
    storage: Storage,
    background: BackgroundBrotli,
    folder: Path,
    build_prefix: str,
    cache_dir: Path,
) -> dict[str, BrotliFile]:
    """The Brotli copies of ``entries`` that win over gzip: ``{storage key of the file: BrotliFile}``.

    A copy is kept when it is smaller than the file's gzip copy (``gzipped``, from
    ``builder.gzip_copies.gzip_copies``) or, for a file without one, at most ``GZIP_MAX_RATIO``
    of the file. Where each copy comes from:

    - a shared file (outside ``build_prefix``) whose copy the store holds: that copy (its key
      names its content), not made again;
    - a database: ``DATABASE_QUALITY`` into ``folder``, or the copy ``background`` started;
    - the other shared files and the build's static files (``builder.copy_cache.is_shared``), the same
      in many builds: the cache in ``cache_dir`` (``cached_brotli_copy`` at ``SHARED_QUALITY``;
      ``digests``: hex sha256 by local path, else computed);
    - the build's own zips (its site-packages bytecode): ``ZIP_QUALITY`` into ``folder``;
    - the rest, the build's own files (its pages, config, lock file, runtime modules):
      ``BUILD_FILE_QUALITY`` into ``folder``.

    Every copy to make is started in ``background`` first, then each is waited for. Raises
    ``OSError``, ``BrotliCancelled`` and ``builder.storage.StorageError``.
    """
    started: dict[str, Path] = {}
    stored: dict[str, int] = {}
    for number, entry in enumerate(entries):
        if not compressible(entry.key):
            continue
        if not entry.key.startswith(build_prefix) and storage.exists(entry.key + BROTLI_SUFFIX):
            stored[entry.key] = storage.size(entry.key + BROTLI_SUFFIX)
            continue
        if content_type_for(entry.key) == DATABASE_TYPE:
            make = file_maker(entry.path, folder / f"{number}.br", DATABASE_QUALITY)
        elif is_shared(entry.key, build_prefix):
            make = cached_maker(entry.path, digests.get(entry.path) or sha256_file(entry.path), cache_dir)
        elif entry.key.endswith(STORED_ZIP_SUFFIX):
            make = file_maker(entry.path, folder / f"{number}.br", ZIP_QUALITY)
        else:
            make = file_maker(entry.path, folder / f"{number}.br", BUILD_FILE_QUALITY)
        background.start(entry.path, make)
        started[entry.key] = entry.path
    found: dict[str, BrotliFile] = {key: BrotliFile(None, size) for key, size in stored.items()}
    for key, source in started.items():
        path = background.result(source)
        found[key] = BrotliFile(path, path.stat().st_size)
    copies: dict[str, BrotliFile] = {}
    for entry in entries:
        copy = found.get(entry.key)
        gzip = gzipped.get(entry.key)
        if copy and copy.size < (gzip.size if gzip else entry.path.stat().st_size * GZIP_MAX_RATIO):
            copies[entry.key] = copy
    return copies
