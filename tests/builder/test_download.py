"""``builder.download``: what a self-host zip may hold, how it is written, and the zip of an older stored build.

A real build's zip is tested in test_bundle.py; serving it in tests/gallery/test_content_download.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from builder.download import (
    BIG_FILE_BYTES,
    BIG_FILE_LEVEL,
    RUNTIME_ZIP_FOLDER,
    bundle_listing,
    download_filename,
    download_key,
    store_bundle_zip,
    write_bundle_zip,
    write_local_zip,
)
from builder.manifest import InvalidManifest, Manifest, ManifestDatabase, ManifestFile
from builder.pyodide import PYODIDE_VERSION
from builder.storage import LocalStorage, MissingKey, S3Storage

BUILD = "b0000000000000009"
WHEEL = f"wheels/{'cd' * 32}/datasette-0.65.5-py3-none-any.whl"
WHEN = datetime(2025, 11, 22, 10, 30, tzinfo=UTC)


def stored_bundle(storage: LocalStorage | S3Storage, database: bytes = b"SQLite format 3\x00rows") -> Manifest:
    """Store a small bundle of build ``BUILD`` and its manifest in ``storage``; return the manifest."""
    files = {
        f"builds/{BUILD}/index.html": ("/index.html", b"<!doctype html><title>boot</title>" * 20),
        f"builds/{BUILD}/sw.js": ("/sw.js", b"// worker\n"),
        f"builds/{BUILD}/data/birds.db": (f"/_build/{BUILD}/data/birds.db", database),
        WHEEL: (f"/_{WHEEL}", b"PK\x03\x04wheel"),
    }
    manifest = Manifest(
        build_id=BUILD,
        pyodide_version=PYODIDE_VERSION,
        datasette_version="0.65.5",
        plugins=(),
        database=ManifestDatabase(name="Birds of Europe", key=f"builds/{BUILD}/data/birds.db", tables=(), views=()),
        source_sha256="0" * 64,
        datasette_settings={},
        metadata={"title": "Birds"},
        files=tuple(
            ManifestFile(key=key, url=url, size=len(data), sha256=hashlib.sha256(data).hexdigest())
            for key, (url, data) in files.items()
        ),
        first_visit_bytes=sum(len(data) for _, data in files.values()),
    )
    for key, (_, data) in files.items():
        storage.put_bytes(key, data)
    storage.put_bytes(f"builds/{BUILD}/manifest.json", manifest.to_json().encode())
    return manifest


def with_entry(manifest: Manifest, key: str, url: str) -> Manifest:
    return replace(manifest, files=(*manifest.files, ManifestFile(key=key, url=url, size=1, sha256="0" * 64)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: with_entry(m, key="uploads/x/source.db", url="/source.db"), "outside the bundle"),
        (lambda m: with_entry(m, key=f"builds/{BUILD}/x.js", url="/../x.js"), "unsafe path"),
        (lambda m: with_entry(m, key=f"builds/{BUILD}/x.js", url="_build/x.js"), "outside the bundle"),
        (lambda m: with_entry(m, key=f"builds/{BUILD}/again.html", url="/index.html"), "lists index.html twice"),
        (lambda m: with_entry(m, key=f"builds/{BUILD}/readme", url="/README.txt"), "lists README.txt twice"),
        (lambda m: with_entry(m, key=download_key(BUILD), url="/download.zip"), "lists the download itself"),
    ],
    ids=["private-upload", "climbs-out", "relative-url", "same-name", "readme-name", "itself"],
)  # fmt: skip
def test_a_manifest_that_cannot_make_a_safe_zip_is_refused(tmp_path: Path, change, message: str) -> None:
    # A manifest that is malformed itself never gets here: Manifest.from_json refuses it (test_manifest.py).
    manifest = change(stored_bundle(LocalStorage(tmp_path)))
    with pytest.raises(InvalidManifest, match=message):
        bundle_listing(manifest, BUILD)


def test_a_malformed_stored_manifest_makes_no_zip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    stored_bundle(storage)
    storage.put_bytes(f"builds/{BUILD}/manifest.json", b'{"build_id": "x", "files": [{"key": "a"}]}')
    with pytest.raises(InvalidManifest, match=f"builds/{BUILD}/manifest.json has no pyodide_version"):
        store_bundle_zip(storage, BUILD, WHEN, temp_dir=tmp_path)
    assert not storage.exists(download_key(BUILD))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Birds of Europe", "birds-of-europe"), ("chinook", "chinook"), ('a"; b', "a-b"), ("", "data"), ("../", "data")],
)
def test_the_file_name_keeps_to_safe_characters(name: str, expected: str) -> None:
    assert download_filename(name, BUILD) == f"{expected}-{BUILD}.zip"


class Reads:
    """Opens a store's keys and records the size of every read, to show nothing is read whole."""

    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage
        self.sizes: list[int] = []

    def open(self, key: str):  # type: ignore[no-untyped-def]
        handle = self.storage.open(key)
        read = handle.read

        def recorded(size: int = -1) -> bytes:
            data = read(size)
            self.sizes.append(len(data))
            return data

        handle.read = recorded  # type: ignore[method-assign]
        return handle


def test_a_large_file_is_copied_in_pieces_and_deflated_only_if_compressible(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    database = os.urandom(3 * 1024 * 1024) + b"\x00" * (2 * 1024 * 1024)
    listing = bundle_listing(stored_bundle(storage, database), BUILD)
    reads = Reads(storage)
    target = io.BytesIO()
    write_bundle_zip(listing, reads.open, target, WHEN)
    assert max(reads.sizes) <= 1024 * 1024
    with zipfile.ZipFile(target) as archive:
        assert archive.read(f"_build/{BUILD}/data/birds.db") == database
        assert archive.getinfo(f"_build/{BUILD}/data/birds.db").compress_type == zipfile.ZIP_DEFLATED
        assert archive.getinfo(WHEEL.replace("wheels/", "_wheels/")).compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("README.txt").date_time == (2025, 11, 22, 10, 30, 0)
        assert "Birds" in archive.read("README.txt").decode()


@pytest.mark.parametrize(("size", "level"), [(BIG_FILE_BYTES - 1, 6), (BIG_FILE_BYTES, BIG_FILE_LEVEL)])
def test_a_big_file_is_deflated_at_the_fast_level(tmp_path: Path, size: int, level: int) -> None:
    storage = LocalStorage(tmp_path / "store")
    # Text-like bytes, which each zlib level compresses to a different size.
    database = (b"".join(b"row %d, station ST%04d, a note\n" % (i, i % 500) for i in range(size // 20)) * 2)[:size]
    target = io.BytesIO()
    write_bundle_zip(bundle_listing(stored_bundle(storage, database), BUILD), storage.open, target, WHEN)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    expected = len(deflate.compress(database) + deflate.flush())
    with zipfile.ZipFile(target) as archive:
        assert archive.getinfo(f"_build/{BUILD}/data/birds.db").compress_size == expected
        assert archive.read(f"_build/{BUILD}/data/birds.db") == database


def test_a_file_whose_size_differs_from_the_manifest_is_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    listing = bundle_listing(stored_bundle(storage), BUILD)
    storage.put_bytes(f"builds/{BUILD}/sw.js", b"// another worker, longer\n")
    with pytest.raises(InvalidManifest, match=f"builds/{BUILD}/sw.js has 26 bytes, .* says 10"):
        write_bundle_zip(listing, storage.open, io.BytesIO(), WHEN)


def with_runtime(storage: LocalStorage, manifest: Manifest) -> Manifest:
    """``manifest`` with two files of the shared runtime stored in ``storage`` and listed first, as builds list them."""
    runtime = {
        f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs": b"export const loadPyodide = () => {};\n" * 50,
        f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm": b"\x00asm\x01\x00\x00\x00" + os.urandom(64) * 300,
    }
    for key, data in runtime.items():
        storage.put_bytes(key, data)
    files = tuple(
        ManifestFile(key=key, url="/_" + key, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        for key, data in runtime.items()
    )
    return replace(manifest, files=(*files, *manifest.files))


def entries(path: Path) -> list[tuple[str, int, bytes, tuple[int, ...]]]:
    """``(name, compress_type, bytes, date_time)`` of each entry of the zip at ``path``, in order."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return [(i.filename, i.compress_type, archive.read(i), i.date_time) for i in archive.infolist()]


def test_the_runtimes_files_are_deflated_once_per_machine_and_each_build_appends_its_own(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    manifest = with_runtime(storage, stored_bundle(storage))
    local = {entry.key: storage.root / entry.key for entry in manifest.files}
    cache = tmp_path / "cache"
    plain, first, second, again = (tmp_path / f"{name}.zip" for name in ("plain", "first", "second", "again"))
    later, latest = datetime(2025, 12, 1, 8, 0, tzinfo=UTC), datetime(2026, 1, 2, 9, 0, tzinfo=UTC)

    assert write_local_zip(manifest, local, plain, WHEN) == len(manifest.files)
    assert write_local_zip(manifest, local, first, WHEN, cache) == len(manifest.files)
    assert write_local_zip(manifest, local, second, later, cache) == len(manifest.files)
    # The same names, order, compression and bytes as a zip written without the cache.
    undated = [entry[:3] for entry in entries(plain)]
    assert [entry[:3] for entry in entries(first)] == undated
    assert [entry[:3] for entry in entries(second)] == undated
    assert [entry[0] for entry in entries(plain)] == [e.url.removeprefix("/") for e in manifest.files] + ["README.txt"]
    # The later build took the runtime's entries from the zip the first one left (dated then).
    dates = [entry[3] for entry in entries(second)]
    assert dates[:2] == [WHEN.timetuple()[:6]] * 2 and set(dates[2:]) == {later.timetuple()[:6]}
    [cached] = (cache / RUNTIME_ZIP_FOLDER).glob("*.zip")
    assert [entry[0] for entry in entries(cached)] == [e.url.removeprefix("/") for e in manifest.files[:2]]

    # A damaged cached zip is made again.
    cached.write_bytes(cached.read_bytes()[:200])
    write_local_zip(manifest, local, again, latest, cache)
    assert [entry[:3] for entry in entries(again)] == undated
    assert {entry[3] for entry in entries(again)} == {latest.timetuple()[:6]}


def test_an_older_build_gets_its_zip_from_the_store_once_and_nothing_when_a_file_is_missing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    manifest = stored_bundle(storage)
    storage.put_bytes("uploads/x/source.db", b"private")
    size = store_bundle_zip(storage, BUILD, WHEN, temp_dir=tmp_path)
    assert size == storage.size(download_key(BUILD))
    with storage.open(download_key(BUILD)) as fh, zipfile.ZipFile(fh) as archive:
        assert archive.namelist() == [*(entry.url.removeprefix("/") for entry in manifest.files), "README.txt"]
    assert [path.name for path in tmp_path.iterdir()] == ["store"], "the temporary zip is removed"

    missing = LocalStorage(tmp_path / "missing")
    stored_bundle(missing)
    (missing.root / "builds" / BUILD / "sw.js").unlink()
    with pytest.raises(MissingKey):
        store_bundle_zip(missing, BUILD, WHEN, temp_dir=tmp_path)
    assert not missing.exists(download_key(BUILD))


def test_an_older_builds_zip_is_made_from_s3_and_stored_as_a_zip(s3_bucket, tmp_path: Path) -> None:
    storage = S3Storage(s3_bucket.name, endpoint_url=s3_bucket.endpoint_url, region=s3_bucket.region)
    stored_bundle(storage)
    size = store_bundle_zip(storage, BUILD, WHEN, temp_dir=tmp_path)
    head = s3_bucket.client().head_object(Bucket=s3_bucket.name, Key=download_key(BUILD))
    assert (head["ContentLength"], head["ContentType"]) == (size, "application/zip")
    with zipfile.ZipFile(io.BytesIO(storage.open(download_key(BUILD)).read())) as archive:
        assert archive.read("sw.js") == b"// worker\n"
