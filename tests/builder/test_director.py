"""``builder.director``: the faults the director turns into a reason for the publisher, phase by phase.

Builds that get as far as Node are in test_bundle.py and test_compat.py; these stop before it,
so they need neither Node nor the wheel cache's network. The faults are real: a key missing from
a real store, an S3 endpoint where nothing listens, a build cancelled from its state callback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.director import BuildCancelled, BuildDirector, BuildError, BuildPhase, BuildRequest
from builder.storage import LocalStorage, S3Storage, Storage
from tests.support.loopback import free_port


def request_for(tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, source_key: str) -> BuildRequest:
    """A build whose upload is copied from storage ``source_key`` into ``tmp_path / "source.db"``, as the worker's."""
    return BuildRequest(
        build_id="bdirector0000001", database_path=tmp_path / "source.db", source_key=source_key,
        database_name="chinook", title="Chinook", description="", plugins=(), datasette_version="0.65.5",
        source_sha256="0" * 64, runtime_dir=pyodide_runtime, cache_dir=wheel_cache, temp_dir=tmp_path,
        storage_retry_budget=1,
    )  # fmt: skip


def run(request: BuildRequest, storage: Storage, on_state: Callable[[BuildPhase], None]) -> list[str]:
    """Run the director on ``request``; return its log lines (it is expected to raise)."""
    lines: list[str] = []
    BuildDirector(request, storage=storage, on_state=on_state, log=lines.append).run()
    return lines


def test_an_upload_gone_from_storage_fails_with_the_reason_to_upload_again(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    states: list[BuildPhase] = []
    with pytest.raises(BuildError) as failed:
        run(request_for(tmp_path, pyodide_runtime, wheel_cache, "uploads/gone/source.db"), storage, states.append)
    assert failed.value.reason == "The uploaded file is no longer in storage. Upload the database again."
    assert failed.value.log_line is None
    assert states == [BuildPhase.VALIDATING]
    assert not (tmp_path / "store").exists()


def test_a_store_down_for_its_whole_retry_budget_fails_with_the_reason_to_rebuild_later(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # a loopback port where nothing listens: a real outage
    storage = S3Storage("outage", endpoint_url=dead, region="us-east-1", retry_budget=1, timeout=1)
    with pytest.raises(BuildError) as failed:
        run(request_for(tmp_path, pyodide_runtime, wheel_cache, "uploads/x/source.db"), storage, lambda phase: None)
    assert failed.value.reason == (
        "Storage was unavailable during the build (retried for up to 1 seconds). "
        "Nothing was published; start the build again later (Rebuild)."
    )
    # The first call to fail names its key: reading the upload, or the background check for the shared
    # runtime's Brotli copies (builder.brotli_copies), which starts with the build.
    assert failed.value.log_line is not None
    assert re.match(r"Storage fault: S3 (uploads/x/source\.db|runtime/pyodide-[^/]+/\S+\.br): ", failed.value.log_line)


def test_a_build_cancelled_meanwhile_stops_before_its_next_phase_and_stores_nothing(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    storage.put_file("uploads/x/source.db", chinook)
    heard: list[BuildPhase] = []

    def on_state(phase: BuildPhase) -> None:
        heard.append(phase)
        if phase == BuildPhase.RESOLVING:
            raise BuildCancelled()

    with pytest.raises(BuildError, match="^The build was cancelled.$"):
        run(request_for(tmp_path, pyodide_runtime, wheel_cache, "uploads/x/source.db"), storage, on_state)
    assert heard == [BuildPhase.VALIDATING, BuildPhase.RESOLVING]
    assert (tmp_path / "source.db").read_bytes() == chinook.read_bytes(), "the upload was copied from storage"
    assert list(storage.keys("uploads/")) == ["uploads/x/source.db"] and not list(storage.keys("builds/"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["source.db", "store"], "the work folder is gone"
