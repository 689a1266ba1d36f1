"""Brotli copies of bundle files (``builder.brotli_copies``): which files get one, at what quality, and the cache.

What a real build stores is checked in test_bundle.py
(``test_compressible_files_get_a_brotli_copy_where_it_beats_the_gzip_one``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import brotli
import pytest

from builder.brotli_copies import (
    BUILD_FILE_QUALITY,
    DATABASE_QUALITY,
    SHARED_QUALITY,
    BackgroundBrotli,
    BrotliCancelled,
    BrotliFile,
    brotli_copies,
    brotli_copy,
    cached_brotli_copy,
    cached_path,
    file_maker,
    shared_quality,
)
from builder.bundle import BundleEntry
from builder.gzip_copies import GzipFile
from builder.storage import LocalStorage
from builder.wheels import sha256_file

BUILD = "builds/b0000000000000001/"
RUNTIME = "runtime/pyodide-0.0.0/"
TEXT = b"export function answer(request) { return datasette.handle(request); }\n" * 300


def test_the_shared_quality_is_11_unless_the_environment_says_otherwise() -> None:
    assert shared_quality({}) == 11
    assert shared_quality({"SHARED_BROTLI_QUALITY": ""}) == 11
    assert shared_quality({"SHARED_BROTLI_QUALITY": " 9 "}) == 9
    assert shared_quality({"SHARED_BROTLI_QUALITY": "0"}) == 0
    for bad in ("12", "-1", "nine", "9.5"):
        with pytest.raises(ValueError, match="SHARED_BROTLI_QUALITY must be an integer from 0 to 11"):
            shared_quality({"SHARED_BROTLI_QUALITY": bad})


def test_the_suite_runs_at_the_quality_it_sets() -> None:
    # tests/conftest.py sets 9 before any builder module is imported (none of the suite's builds
    # then spend a minute on quality 11); a builder imported first would have read 11.
    assert SHARED_QUALITY == int(os.environ["SHARED_BROTLI_QUALITY"])


def test_a_copy_decodes_to_the_file_and_is_the_same_every_time(tmp_path: Path) -> None:
    source = tmp_path / "core.mjs"
    source.write_bytes(TEXT)
    size = brotli_copy(source, tmp_path / "one.br", 11)
    brotli_copy(source, tmp_path / "two.br", 11)
    assert size == (tmp_path / "one.br").stat().st_size < len(TEXT) / 10
    assert brotli.decompress((tmp_path / "one.br").read_bytes()) == TEXT
    assert (tmp_path / "one.br").read_bytes() == (tmp_path / "two.br").read_bytes()


def test_leaving_the_background_stops_unfinished_copies_and_their_threads(tmp_path: Path) -> None:
    source = tmp_path / "big.db"
    source.write_bytes(os.urandom(32 * 1024 * 1024))  # seconds of work at quality 11
    target = tmp_path / "big.db.br"
    with pytest.raises(RuntimeError), BackgroundBrotli() as background:
        background.start(source, file_maker(source, target, 11))
        raise RuntimeError("the Node check failed")
    assert not any(thread.name.startswith("glasshouse-brotli") for thread in threading.enumerate())
    assert not target.exists(), "no partial copy left that could pass for a whole one"
    stop = threading.Event()
    stop.set()
    with pytest.raises(BrotliCancelled):
        brotli_copy(source, target, 5, stop)
    assert not target.exists()


def entry(folder: Path, key: str, data: bytes) -> BundleEntry:
    path = folder / key.replace("/", "_")
    path.write_bytes(data)
    return BundleEntry(key, path, "/" + key)


def test_a_copy_is_kept_only_where_it_beats_gzip_and_each_kind_of_file_gets_its_quality(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    database = os.urandom(4096) + b"CREATE TABLE observations (station TEXT, note TEXT);" * 2000
    static = b".row { color: #333; padding: 0.5em; }\n" * 500
    entries = [
        entry(files, f"{BUILD}js/core.mjs", TEXT),
        entry(files, f"{BUILD}data/chinook.db", database),
        entry(files, f"{BUILD}-/static/app.css", static),
        entry(files, f"{RUNTIME}pyodide.asm.mjs", TEXT + b"// runtime\n"),
        entry(files, f"{BUILD}noise.js", os.urandom(50_000)),  # no gain: neither copy is kept
        entry(files, f"{BUILD}beaten.js", b"var beaten = 1;\n" * 400),  # its gzip copy is listed as smaller
        entry(files, "wheels/" + "ab" * 32 + "/datasette-0.65.5-py3-none-any.whl", TEXT),  # never compressed
    ]
    gzipped = {
        f"{BUILD}js/core.mjs": GzipFile(None, len(TEXT) // 5),
        f"{BUILD}beaten.js": GzipFile(None, 10),
    }
    storage = LocalStorage(tmp_path / "store")
    cache = tmp_path / "cache"
    work = tmp_path / "work"
    work.mkdir()
    with BackgroundBrotli() as background:
        copies = brotli_copies(entries, gzipped, {}, storage, background, work, BUILD, cache)
    assert set(copies) == {f"{BUILD}js/core.mjs", f"{BUILD}data/chinook.db", f"{BUILD}-/static/app.css",
                           f"{RUNTIME}pyodide.asm.mjs"}  # fmt: skip
    by_key = {item.key: item for item in entries}
    expected = {
        f"{BUILD}js/core.mjs": BUILD_FILE_QUALITY,
        f"{BUILD}data/chinook.db": DATABASE_QUALITY,
        f"{BUILD}-/static/app.css": SHARED_QUALITY,
        f"{RUNTIME}pyodide.asm.mjs": SHARED_QUALITY,
    }
    for key, quality in expected.items():
        copy = copies[key]
        assert copy.path is not None
        source = by_key[key].path.read_bytes()
        assert copy.path.read_bytes() == brotli.compress(source, quality=quality), key
        assert copy.size == copy.path.stat().st_size
    # The runtime's and the static file's copies come from the cache; the build's own are in its folder.
    assert copies[f"{RUNTIME}pyodide.asm.mjs"].path.parent == cache / "brotli"
    assert copies[f"{BUILD}-/static/app.css"].path.parent == cache / "brotli"
    assert copies[f"{BUILD}js/core.mjs"].path.parent == work
    assert copies[f"{BUILD}data/chinook.db"].path.parent == work


def test_a_shared_files_stored_copy_is_taken_as_it_is(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    runtime = entry(files, f"{RUNTIME}pyodide.asm.wasm", TEXT)
    storage = LocalStorage(tmp_path / "store")
    storage.put_bytes(runtime.key + ".br", b"x" * 100)  # another build stored it; its key names its content
    with BackgroundBrotli() as background:
        copies = brotli_copies([runtime], {}, {}, storage, background, tmp_path, BUILD, tmp_path / "cache")
    assert copies == {runtime.key: BrotliFile(None, 100)}
    assert not (tmp_path / "cache").exists(), "nothing compressed"


def test_the_database_copy_started_during_the_build_is_the_one_taken(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    database = entry(files, f"{BUILD}data/chinook.db", b"SQLite rows " * 100_000)
    started = tmp_path / "database.br"
    with BackgroundBrotli() as background:
        background.start(database.path, file_maker(database.path, started, DATABASE_QUALITY))
        copies = brotli_copies([database], {}, {}, LocalStorage(tmp_path / "store"), background, tmp_path, BUILD,
                               tmp_path / "cache")  # fmt: skip
    assert copies[database.key].path == started
    assert brotli.decompress(started.read_bytes()) == database.path.read_bytes()


def test_a_build_waiting_for_another_process_to_compress_a_runtime_file_stops_when_it_ends(tmp_path: Path) -> None:
    source = tmp_path / "pyodide.asm.wasm"
    source.write_bytes(TEXT)
    digest = sha256_file(source)
    cache = tmp_path / "cache"
    lock = cached_path(cache, digest, SHARED_QUALITY).with_name(f"{digest}-q{SHARED_QUALITY}.br.lock")
    lock.parent.mkdir(parents=True)
    outcome: list[object] = []
    stop = threading.Event()
    with lock.open("a") as other:  # another build process compressing the same file
        fcntl.flock(other, fcntl.LOCK_EX)

        def wait() -> None:
            try:
                outcome.append(cached_brotli_copy(source, digest, cache, stop=stop))
            except BrotliCancelled as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and outcome == [], "it waits for the other process's copy"
        stop.set()  # its build ended (failed, cancelled, out of time)
        waiter.join(5)
        assert not waiter.is_alive() and isinstance(outcome[0], BrotliCancelled)
    # Once the other process is done, a waiting build goes on and finds or makes the copy.
    assert brotli.decompress(cached_brotli_copy(source, digest, cache).read_bytes()) == TEXT
