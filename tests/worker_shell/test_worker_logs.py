"""Worker log lines name the build they belong to (``build_id=`` from Celery's task signals)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gallery.models import BuildState

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_every_line_a_worker_writes_during_a_build_names_the_build(
    celery_worker_factory, corpus: dict[str, Path], publish, wait_for_build
) -> None:
    worker = celery_worker_factory(pool="prefork")
    # A page of noise behind a valid header: accepted at upload, refused by the build's check, fast.
    build = wait_for_build(publish(corpus["corrupted_page"]))
    assert build.state == BuildState.FAILED
    worker.wait_for_log(r"build task ended: failed")
    lines = worker.log.splitlines()
    started = next(i for i, line in enumerate(lines) if "build started" in line)
    ended = next(i for i, line in enumerate(lines) if "build task ended" in line)
    during = [line for line in lines[started : ended + 1] if line.startswith("[")]
    assert during and all(f"build_id={build.id} " in line for line in during), "\n".join(during)
    # Lines of the worker's main process outside the build say so.
    assert re.search(r"build_id=- .*ready\.$", worker.log, re.MULTILINE)
