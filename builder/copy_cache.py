"""The build cache's compressed copies of files that many builds share, kept by content.

The shared runtime files (``runtime/...``: Pyodide's wasm, JavaScript and standard library) and a
build's Datasette and plugin static files (``<build prefix>-/...``, the same in every build with
that Datasette and those plugins) are compressed once per machine: ``builder.gzip_copies`` and
``builder.brotli_copies`` keep their copies in the build cache (``cache_dir/<kind>/``), named by
the source's sha256. ``cached_copy`` makes one atomically under a file lock, so builds in other
processes wait for it instead of compressing the same bytes, and checks a copy it reuses: one
that no longer decodes to its source (a damaged disk, a copy cut short) is made again.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Where a build's Datasette and plugin static files are, under its prefix: the same files in every
#: build with that Datasette and those plugins, so their copies are cached like the runtime's
#: (CodeMirror's 256 KB took 0.57 s of CPU at Brotli quality 11, about half of a build's own files' time).
STATIC_FOLDER = "-/"


def is_shared(key: str, build_prefix: str) -> bool:
    """Whether the file at storage ``key`` has the same bytes in many builds: outside ``build_prefix``
    (the shared runtime and wheels), or one of the build's static files (``STATIC_FOLDER``)."""
    return not key.startswith(build_prefix) or key.startswith(build_prefix + STATIC_FOLDER)


def cached_copy(
    target: Path,
    make: Callable[[Path, threading.Event | None], object],
    decodes: Callable[[Path], bool],
    stop: threading.Event | None = None,
    cancelled: Callable[[str], Exception] = RuntimeError,
) -> Path:
    """The cached copy at ``target``, made there with ``make(scratch, stop)`` if missing or damaged.

    ``decodes(path)`` says whether a copy decodes to its source's bytes. The copy is written to
    a scratch file beside ``target`` and renamed over it (mode 0644), under an exclusive lock on
    ``<target>.lock`` (empty; it stays): a process that finds the lock held waits for the other's
    copy, polling every 0.1 s, and raises ``cancelled(message)`` once ``stop`` is set. Raises
    ``OSError`` and whatever ``make`` raises (its scratch file removed).
    """
    if target.is_file() and decodes(target):
        return target
    with _cache_lock(target.with_name(target.name + ".lock"), stop, cancelled):
        if target.is_file() and decodes(target):
            return target
        handle, scratch = tempfile.mkstemp(prefix=".making-", dir=target.parent)
        os.close(handle)
        try:
            make(Path(scratch), stop)
            os.chmod(scratch, 0o644)  # as the rest of the cache (mkstemp made it private)
            os.replace(scratch, target)
        finally:
            Path(scratch).unlink(missing_ok=True)
    return target


@contextmanager
def _cache_lock(path: Path, stop: threading.Event | None, cancelled: Callable[[str], Exception]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created with its folder), polling so that a build
    that ends while another process compresses (Brotli quality 11 on the wasm: a minute) need not
    wait for it: raises ``cancelled(...)`` once ``stop`` is set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop is not None and stop.wait(0.1):
                    raise cancelled(f"stopped waiting for {path.name}") from None
                if stop is None:
                    time.sleep(0.1)
        yield
