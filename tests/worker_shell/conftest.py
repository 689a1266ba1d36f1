"""Fixtures of the worker tests: publishing a file as an upload, and waiting for its build."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files import File


@pytest.fixture
def publish() -> Callable[..., object]:
    """``publish(path, plugins=None) -> Build``: upload ``path`` through ``galleries.accept_upload`` as the
    operator's ``publish`` command does (queued build, approved: it goes live once ready)."""
    from gallery.models import Gallery
    from gallery.services import galleries

    def upload(path: Path, plugins: list[str] | None = None) -> object:
        with path.open("rb") as fh:
            return galleries.accept_upload(
                upload=File(fh, name=path.name),
                filename=path.name,
                title=path.stem,
                description="",
                plugins=plugins or [],
                visibility=Gallery.Visibility.LISTED,
                by_operator=True,
            )

    return upload


@pytest.fixture
def wait_for_build() -> Callable[..., object]:
    """``wait_for_build(build, until=is_final, timeout=180.0, every=0.5) -> Build``: poll the row until ``until(build)``.

    Fails with the build's state and log on timeout.
    """

    def wait(build, until=lambda b: b.is_final, timeout: float = 180.0, every: float = 0.5):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            build.refresh_from_db()
            if until(build):
                return build
            time.sleep(every)
        raise AssertionError(f"build still {build.state} after {timeout:.0f} s; log:\n{build.log}")

    return wait
