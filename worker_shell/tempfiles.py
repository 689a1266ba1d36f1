"""Temporary files of builds: one folder per build under the data folder, none outliving it.

Every temporary file of a build (the downloaded upload, the bundle's staging folder, pip's
downloads, Node's scratch) lives in ``<data>/tmp/builds/<build-id>/`` (``<data>/tmp`` is
``FILE_UPLOAD_TEMP_DIR``, on the data disk rather than a small ``/tmp``), in a folder of its own
per attempt, so two deliveries of one build never share files. The folder goes:

- when the attempt ends, whether the build succeeded or failed (``build_temp_dir``'s ``finally``;
  a soft time limit raises inside the task, so it passes there too);
- at the hard time limit, or when the pool process dies, and no ``finally`` runs: the worker's
  main process removes the build's folder (``worker_shell.tasks.BuildTaskRequest``, which calls
  ``remove_build_temp_dir``);
- when a worker starts (``worker_ready``) and whenever a build starts: what is older than the hard
  time limit belongs to no running attempt (a worker killed by the kernel, a machine that lost
  power), since the pool kills every attempt at that age.

One attempt runs per process at a time (prefork or solo pool).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import signals
from django.conf import settings

from gallery.models import BUILD_ID_RE

logger = logging.getLogger(__name__)



def temp_root() -> Path:
    """``<FILE_UPLOAD_TEMP_DIR>/builds``: where every build's temporary folder lives."""
    return Path(settings.FILE_UPLOAD_TEMP_DIR) / "builds"


def temp_dir_of(build_id: str) -> Path:
    """The temporary folder of build ``build_id``; ``ValueError`` if it is not a build id (``BUILD_ID_RE``)."""
    if not isinstance(build_id, str) or not BUILD_ID_RE.fullmatch(build_id):
        raise ValueError(f"not a build id: {build_id!r}")
    return temp_root() / build_id


@contextmanager
def build_temp_dir(build_id: str) -> Iterator[Path]:
    """Yield a new, empty folder for one attempt of build ``build_id``; remove it on the way out.

    The folder is ``<data>/tmp/builds/<build-id>/attempt-<random>/``; the build's folder goes too
    once no other attempt uses it. Stale folders of any build are removed first
    (``remove_stale_temp_dirs``). Raises ``ValueError`` for a malformed id, ``OSError`` if the
    data disk refuses the folder.
    """
    remove_stale_temp_dirs()
    folder = temp_dir_of(build_id)
    for tries_left in (2, 1, 0):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            attempt = Path(tempfile.mkdtemp(prefix="attempt-", dir=folder))
            break
        except FileNotFoundError:
            # A starting worker's stale sweep removed the empty folder in between: make it again.
            if not tries_left:
                raise
    try:
        yield attempt
    finally:
        shutil.rmtree(attempt, ignore_errors=True)
        try:
            folder.rmdir()  # only if empty: another delivery of the same build may be running
        except OSError:
            pass


def remove_build_temp_dir(build_id: str) -> bool:
    """Remove build ``build_id``'s temporary folder with every attempt in it; return whether it existed."""
    folder = temp_dir_of(build_id)
    existed = folder.exists()
    shutil.rmtree(folder, ignore_errors=True)
    return existed


def remove_stale_temp_dirs(max_age: float | None = None, *, now: float | None = None) -> list[str]:
    """Remove temporary files of builds last modified more than ``max_age`` seconds ago; return their paths.

    ``max_age`` defaults to ``BUILD_HARD_TIME_LIMIT``: the pool kills every attempt at that age,
    so nothing older is in use. Looks at each attempt folder (and anything else) inside each
    build's folder, then removes build folders left empty. Paths are relative to ``temp_root()``.
    Errors (a folder removed meanwhile by another worker) are ignored.
    """
    root = temp_root()
    if not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - (settings.BUILD_HARD_TIME_LIMIT if max_age is None else max_age)
    removed = []
    for folder in root.iterdir():
        entries = list(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else [folder]
        stale = [entry for entry in entries if _modified(entry) < cutoff]
        for entry in stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.relative_to(root).as_posix())
        if folder.is_dir() and len(stale) == len(entries) and (stale or _modified(folder) < cutoff):
            try:
                folder.rmdir()
            except OSError:
                pass
    if removed:
        logger.info("removed %d stale temporary folders of builds: %s", len(removed), ", ".join(removed))
    return removed


def _modified(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already


@signals.worker_ready.connect
def _remove_stale_at_start(**kwargs: Any) -> None:
    remove_stale_temp_dirs()
