"""The wheel cache is checked against the catalog lock on every build, not only on download."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from builder import wheels as wheels_module
from builder.catalog import load_lock
from builder.director import BuildDirector, BuildError, BuildRequest
from builder.storage import LocalStorage
from builder.wheels import LockedWheel, TamperedWheel, cache_lock, closure, fetch_wheels


def cached_wheel(cache: Path, data: bytes, pinned: bytes | None = None) -> LockedWheel:
    """A wheel file holding ``data`` in ``cache``, pinned at the sha256 of ``pinned`` (default: ``data``)."""
    sha256 = hashlib.sha256(pinned if pinned is not None else data).hexdigest()
    wheel = LockedWheel(name="demo", version="1.0", filename="demo-1.0-py3-none-any.whl", sha256=sha256, source="wheel")
    (cache / sha256).mkdir(parents=True)
    (cache / sha256 / wheel.filename).write_bytes(data)
    return wheel


def fetch_while_another_build_downloads(
    monkeypatch: pytest.MonkeyPatch, cache: Path, wheels: list[LockedWheel], stored: dict[LockedWheel, bytes], log: Callable[[str], None]
) -> dict[str, Path]:
    """``fetch_wheels(wheels, cache, log)`` started while another build holds the download lock; once it
    has looked in the cache, that build stores ``stored`` (wheel -> bytes) and lets go. Returns its result."""
    first_look = threading.Event()
    look = wheels_module._cached

    def watched(*args):  # type: ignore[no-untyped-def]
        missing = look(*args)
        first_look.set()
        return missing

    monkeypatch.setattr(wheels_module, "_cached", watched)
    with ThreadPoolExecutor(1) as pool:
        with cache_lock(cache / ".fetch.lock"):  # the other build, downloading
            waiting = pool.submit(fetch_wheels, wheels, cache, log)
            assert first_look.wait(10), "the build never looked in the cache"
            for wheel, data in stored.items():
                (cache / wheel.sha256).mkdir()
                (cache / wheel.sha256 / wheel.filename).write_bytes(data)
        return waiting.result(timeout=10)


def test_a_cached_wheel_that_matches_the_lock_is_used_without_a_download(tmp_path: Path) -> None:
    wheel = cached_wheel(tmp_path, b"PK\x03\x04 intact")
    lines: list[str] = []
    assert fetch_wheels([wheel], tmp_path, lines.append) == {"demo": tmp_path / wheel.sha256 / wheel.filename}
    assert lines == ["All 1 wheels are in the cache."]


def test_a_build_that_waited_for_another_builds_download_takes_the_wheels_it_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download lock: a build finding a wheel missing waits while another build holds the
    lock, then finds the wheel that build stored and downloads nothing (this one cannot be on PyPI)."""
    data = b"PK\x03\x04 stored by the other build"
    wheel = LockedWheel(name="demo", version="1.0", filename="demo-1.0-py3-none-any.whl",
                        sha256=hashlib.sha256(data).hexdigest(), source="wheel")  # fmt: skip
    lines: list[str] = []
    fetched = fetch_while_another_build_downloads(monkeypatch, tmp_path, [wheel], {wheel: data}, lines.append)
    assert fetched == {"demo": tmp_path / wheel.sha256 / wheel.filename}
    assert lines == ["All 1 wheels are in the cache (another build fetched them meanwhile)."]


def test_the_wheels_come_back_in_the_locks_order_whichever_were_cached_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle lists the wheels in this order: a build on a cold cache must list them as one on a warm cache."""
    pinned = {name: f"PK\x03\x04 {name}".encode() for name in ("alpha", "beta")}
    wheels = [
        LockedWheel(name=name, version="1.0", filename=f"{name}-1.0-py3-none-any.whl",
                    sha256=hashlib.sha256(data).hexdigest(), source="wheel")
        for name, data in pinned.items()
    ]  # fmt: skip
    alpha, beta = wheels
    (tmp_path / beta.sha256).mkdir()
    (tmp_path / beta.sha256 / beta.filename).write_bytes(pinned["beta"])
    fetched = fetch_while_another_build_downloads(monkeypatch, tmp_path, wheels, {alpha: pinned["alpha"]}, lambda line: None)
    assert list(fetched) == ["alpha", "beta"]


def test_a_cached_wheel_changed_after_its_download_is_refused(tmp_path: Path) -> None:
    wheel = cached_wheel(tmp_path, b"PK\x03\x04 tampered", pinned=b"PK\x03\x04 intact")
    with pytest.raises(TamperedWheel) as refused:
        fetch_wheels([wheel], tmp_path, lambda line: None)
    message = refused.value.args[0]
    assert str(tmp_path / wheel.sha256 / wheel.filename) in message
    assert f"the catalog lock pins {wheel.sha256}" in message
    assert "Delete that file" in message


def test_a_build_with_a_tampered_cache_fails_with_a_clear_reason_and_stores_nothing(
    tmp_path: Path, wheel_cache: Path, pyodide_runtime: Path
) -> None:
    # A private copy of the cache (hard links), with one wheel of Datasette's closure replaced.
    cache = tmp_path / "cache"
    wheels = closure(load_lock("0.65.5"), ["datasette"])
    fetch_wheels(wheels, wheel_cache, lambda line: None)
    for wheel in wheels:
        (cache / wheel.sha256).mkdir(parents=True)
        (cache / wheel.sha256 / wheel.filename).hardlink_to(wheel_cache / wheel.sha256 / wheel.filename)
    victim = next(w for w in wheels if w.name == "datasette")
    target = cache / victim.sha256 / victim.filename
    data = target.read_bytes()
    target.unlink()  # never write through the hard link into the shared cache
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    database = tmp_path / "tiny.db"
    with sqlite3.connect(database) as conn:
        conn.execute("create table t (x)")
    log: list[str] = []
    with pytest.raises(BuildError, match="failed its integrity check, so the build stopped and nothing was published"):
        BuildDirector(
            BuildRequest(
                build_id="b0000000000000009", database_path=database, database_name="tiny", title="Tiny",
                description="", plugins=(), datasette_version="0.65.5", source_sha256="0" * 64,
                runtime_dir=pyodide_runtime, cache_dir=cache,
            ),
            storage=LocalStorage(tmp_path / "store"), on_state=lambda state: None, log=log.append,
        ).run()  # fmt: skip
    assert any(
        line.startswith("Wheel integrity check failed: The cached wheel") and victim.filename in line for line in log
    )
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.*"))
