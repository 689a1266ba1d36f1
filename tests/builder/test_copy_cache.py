"""The build cache's compressed copies (``builder.copy_cache``): Brotli's and gzip's, and which gzip copies come from it.

What a real build stores is checked in test_bundle.py (``test_compressible_files_get_a_deterministic_gzip_copy``).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import brotli
import pytest

from builder.brotli_copies import SHARED_QUALITY, cached_brotli_copy, cached_path
from builder.bundle import BundleEntry
from builder.gzip_copies import BackgroundGzip, cached_gzip_copy, cached_gzip_path, gzip_copies
from builder.storage import GZIP_SUFFIX, LocalStorage
from builder.wheels import sha256_file

BUILD = "builds/b0000000000000002/"
RUNTIME = "runtime/pyodide-0.0.0/"
SCRIPT = b"const rows = await datasette.query('select * from notes');\n" * 400


@pytest.mark.parametrize(
    ("make", "where", "decode", "encode"),
    [
        (cached_brotli_copy, lambda cache, digest: cached_path(cache, digest, SHARED_QUALITY), brotli.decompress, brotli.compress),
        (cached_gzip_copy, cached_gzip_path, gzip.decompress, gzip.compress),
    ],
    ids=["brotli", "gzip"],
)
def test_a_shared_file_is_compressed_once_per_cache_and_a_damaged_copy_is_made_again(
    tmp_path: Path,
    make: Callable[[Path, str, Path], Path],
    where: Callable[[Path, str], Path],
    decode: Callable[[bytes], bytes],
    encode: Callable[[bytes], bytes],
) -> None:
    source = tmp_path / "pyodide.asm.js"
    source.write_bytes(SCRIPT)
    digest = sha256_file(source)
    cache = tmp_path / "cache"
    copy = make(source, digest, cache)
    assert copy == where(cache, digest) and copy.parent.parent == cache and digest in copy.name
    assert decode(copy.read_bytes()) == SCRIPT
    made = copy.stat().st_mtime_ns
    os.utime(copy, ns=(made - 10**9, made - 10**9))  # so a rewrite would show
    assert make(source, digest, cache) == copy
    assert copy.stat().st_mtime_ns == made - 10**9, "taken from the cache, not made again"
    # A copy that no longer decodes to the file (a damaged disk, a copy cut short) is replaced.
    for damage in (copy.read_bytes()[:-9], encode(b"other bytes"), b"not compressed at all"):
        copy.write_bytes(damage)
        assert decode(make(source, digest, cache).read_bytes()) == SCRIPT
    assert sorted(path.name for path in copy.parent.iterdir()) == [copy.name, copy.name + ".lock"]


def test_shared_and_static_files_come_from_the_cache_and_the_builds_own_from_its_folder(tmp_path: Path) -> None:
    names = {
        RUNTIME + "pyodide.asm.js": "runtime.js",
        BUILD + "-/static/app.css": "app.css",
        BUILD + "glasshouse_runtime.py": "runtime.py",
        RUNTIME + "stored.mjs": "stored.mjs",
    }
    entries = []
    for number, (key, name) in enumerate(names.items()):
        path = tmp_path / name
        path.write_bytes(SCRIPT + bytes([number]) * 10)
        entries.append(BundleEntry(key, path, ""))
    store = LocalStorage(tmp_path / "store")
    store.put_file(RUNTIME + "stored.mjs" + GZIP_SUFFIX, tmp_path / "runtime.js")  # an earlier build stored it
    cache, folder = tmp_path / "cache", tmp_path / "gzip"
    folder.mkdir()
    digests = {entries[0].path: sha256_file(entries[0].path)}  # the rest are hashed when needed
    with BackgroundGzip() as background:
        copies = gzip_copies(entries, store, background, folder, BUILD, cache, digests)
    assert copies[RUNTIME + "pyodide.asm.js"].path == cached_gzip_path(cache, digests[entries[0].path])
    assert copies[BUILD + "-/static/app.css"].path == cached_gzip_path(cache, sha256_file(entries[1].path))
    assert copies[BUILD + "glasshouse_runtime.py"].path == folder / "2.gz"
    assert copies[RUNTIME + "stored.mjs"].path is None
    for entry in entries[:3]:
        copy = copies[entry.key]
        assert copy.path is not None and gzip.decompress(copy.path.read_bytes()) == entry.path.read_bytes()
        assert copy.size == copy.path.stat().st_size
    # A second build gets the cached copies without compressing anything again.
    made = {key: copies[key].path.stat().st_mtime_ns for key in list(names)[:2]}  # type: ignore[union-attr]
    with BackgroundGzip() as background:
        again = gzip_copies(entries, store, background, folder, BUILD, cache, {})
    assert {key: again[key].path.stat().st_mtime_ns for key in made} == made  # type: ignore[union-attr]
