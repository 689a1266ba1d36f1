"""``worker_shell.tempfiles``: each build's temporary files in one folder under the data folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from worker_shell.tempfiles import (
    build_temp_dir,
    remove_stale_temp_dirs,
    temp_dir_of,
    temp_root,
)

BUILD = "b000000000000001"


@pytest.fixture
def builds_tmp(glasshouse_data_dir: Path, settings) -> Path:
    """``<data>/tmp/builds`` of a fresh data folder, with a hard time limit of 600 s."""
    settings.BUILD_HARD_TIME_LIMIT = 600
    assert temp_root() == glasshouse_data_dir / "tmp" / "builds"
    return temp_root()


def make_old(path: Path, age: float) -> None:
    then = time.time() - age
    os.utime(path, (then, then))


def test_an_attempt_works_in_its_own_folder_under_the_build_folder_and_leaves_nothing(builds_tmp: Path) -> None:
    with build_temp_dir(BUILD) as first, build_temp_dir(BUILD) as second:
        assert first.parent == second.parent == builds_tmp / BUILD
        assert first != second  # two deliveries of one build never share files
        (first / "source.db").write_bytes(b"x")
    assert not (builds_tmp / BUILD).exists()


def test_the_folder_goes_when_the_build_fails(builds_tmp: Path) -> None:
    with pytest.raises(RuntimeError), build_temp_dir(BUILD) as attempt:
        (attempt / "staging").mkdir()
        raise RuntimeError("the build failed")
    assert list(builds_tmp.iterdir()) == []


@pytest.mark.parametrize("build_id", ["../etc", "B0000000000000001", "", "b000000000000000/"])
def test_a_malformed_build_id_names_no_folder(builds_tmp: Path, build_id: str) -> None:
    with pytest.raises(ValueError, match="not a build id"):
        temp_dir_of(build_id)


def test_only_files_older_than_the_hard_time_limit_are_stale(builds_tmp: Path) -> None:
    dead = builds_tmp / "b000000000000002" / "attempt-dead"
    (dead / "glasshouse-bundle-x").mkdir(parents=True)
    (dead / "source.db").write_bytes(b"x")
    running = builds_tmp / "b000000000000003" / "attempt-running"
    running.mkdir(parents=True)
    beside_running = builds_tmp / "b000000000000003" / "attempt-dead"
    beside_running.mkdir()
    for path in (dead, beside_running, dead.parent):
        make_old(path, 601)
    make_old(running, 599)

    removed = remove_stale_temp_dirs()

    assert sorted(removed) == ["b000000000000002/attempt-dead", "b000000000000003/attempt-dead"]
    assert not dead.parent.exists()
    assert running.is_dir()
    assert remove_stale_temp_dirs() == []  # idempotent


def test_a_new_attempt_sweeps_stale_folders_first(builds_tmp: Path) -> None:
    dead = builds_tmp / "b000000000000002" / "attempt-dead"
    dead.mkdir(parents=True)
    make_old(dead, 3600)
    with build_temp_dir(BUILD):
        assert not dead.exists()

