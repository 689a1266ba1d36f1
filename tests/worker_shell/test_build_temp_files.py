"""A real worker keeps every temporary file of a build under ``<data>/tmp/builds/<build-id>/`` and
removes it when the build succeeds or fails; a starting worker removes stale ones.

The worker's ``TMPDIR`` is an empty folder of the test's: it must stay empty, so nothing of a
build (pip, Node, Python's ``tempfile``) went to the system's temporary folder instead.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest

from gallery.models import Build, BuildState

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class FolderWatch:
    """Records every path that appears under ``root`` while it runs (polled every 20 ms)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.root.is_dir():
                for path in self.root.rglob("*"):
                    self.seen.add(path.relative_to(self.root).as_posix())
            time.sleep(0.02)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def system_tmp(tmp_path: Path) -> Path:
    """An empty folder given to the worker as ``TMPDIR``."""
    path = tmp_path / "system-tmp"
    path.mkdir()
    return path


@pytest.fixture
def small_database(tmp_path: Path) -> Path:
    path = tmp_path / "plants.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE plant (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO plant (name) VALUES (?)", [("fern",), ("moss",)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def build_and_watch(
    glasshouse_data_dir: Path, publish: Callable[..., Build], wait_for_build: Callable[..., Build]
) -> Callable[[Path], tuple[Build, set[str]]]:
    """Publish a database and wait for its build to end, recording what appeared under ``<data>/tmp/builds``."""

    def run(database: Path) -> tuple[Build, set[str]]:
        with FolderWatch(glasshouse_data_dir / "tmp" / "builds") as watch:
            build = wait_for_build(publish(database), timeout=120)
        return build, watch.seen

    return run


def attempt_files(seen: set[str], build: Build) -> Iterator[str]:
    """What the watch saw inside an attempt folder of ``build``, relative to that folder."""
    for path in seen:
        parts = path.split("/")
        if len(parts) > 2 and parts[0] == build.id and parts[1].startswith("attempt-"):
            yield "/".join(parts[2:])


def test_a_successful_build_keeps_its_temporary_files_in_its_folder_and_removes_them(
    celery_worker_factory, build_and_watch, small_database: Path, system_tmp: Path, glasshouse_data_dir: Path
) -> None:
    celery_worker_factory(env={"TMPDIR": str(system_tmp)})
    build, seen = build_and_watch(small_database)
    assert build.state == BuildState.READY, build.log
    files = set(attempt_files(seen, build))
    assert "source.db" in files  # the downloaded upload
    assert any(f.startswith("glasshouse-bundle-") and f.endswith("/plants.db") for f in files)  # the staging folder
    assert any("/glasshouse-compat-" in f for f in files)  # Node's scratch
    assert list((glasshouse_data_dir / "tmp" / "builds").iterdir()) == []
    assert list(system_tmp.iterdir()) == []


def test_a_failed_build_removes_its_temporary_files_and_a_tiny_node_heap_is_a_clear_reason(
    celery_worker_factory, build_and_watch, small_database: Path, system_tmp: Path, glasshouse_data_dir: Path
) -> None:
    celery_worker_factory(env={"TMPDIR": str(system_tmp), "BUILD_NODE_MAX_OLD_SPACE_MB": "8"})
    build, seen = build_and_watch(small_database)
    assert build.state == BuildState.FAILED
    assert build.failure_reason.startswith(
        "The build ran out of memory in the compatibility check (Node's heap is capped at 8 MB)."
    ), build.failure_reason
    assert "source.db" in set(attempt_files(seen, build))
    assert list((glasshouse_data_dir / "tmp" / "builds").iterdir()) == []
    assert list(system_tmp.iterdir()) == []


def test_a_starting_worker_removes_stale_temporary_files_and_keeps_fresh_ones(
    celery_worker_factory, glasshouse_data_dir: Path
) -> None:
    builds_tmp = glasshouse_data_dir / "tmp" / "builds"
    stale = builds_tmp / "b00000000000000a" / "attempt-killed"  # e.g. the machine lost power mid-build
    (stale / "glasshouse-bundle-x").mkdir(parents=True)
    (stale / "source.db").write_bytes(b"SQLite format 3\x00")
    fresh = builds_tmp / "b00000000000000b" / "attempt-running"  # another worker's build, 10 s old
    fresh.mkdir(parents=True)
    an_hour_ago = time.time() - 3600
    for path in (stale, stale.parent):
        os.utime(path, (an_hour_ago, an_hour_ago))

    worker = celery_worker_factory(env={"BUILD_SOFT_TIME_LIMIT": "600", "BUILD_HARD_TIME_LIMIT": "1200"})

    assert not stale.parent.exists(), worker.log
    assert fresh.is_dir()
    assert "removed 1 stale temporary folders of builds: b00000000000000a/attempt-killed" in worker.log
