from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
import threading
import zipfile
from pathlib import Path
from typing import Any

import brotli
import pytest
from PIL import Image

from builder.brotli_copies import LAZY_DATABASE_QUALITY, brotli_copy
from builder.csp import gallery_policy
from builder.director import BuildDirector, BuildError, BuildPhase, BuildRequest, BuildResult
from builder.gzip_copies import DATABASE_GZIP_LEVEL, GZIP_MAX_RATIO, LAZY_DATABASE_GZIP_LEVEL, BackgroundGzip, gzip_copy
from builder.manifest import BrotliCopy, DownloadZip, GzipCopy, Manifest, ManifestFile, StoredImage
from builder.pyodide import PYODIDE_VERSION
from builder.runtime import BUILTIN_PLUGINS, READER_MODULES
from builder.storage import LocalStorage, compressible, content_type_for


def request_for(
    database: Path,
    runtime_dir: Path,
    cache_dir: Path,
    build_id: str = "b0000000000000001",
    plugins: tuple[str, ...] = (),
    temp_dir: Path | None = None,
    lazy_database_min_bytes: int | None = None,
) -> BuildRequest:
    return BuildRequest(
        build_id=build_id,
        database_path=database,
        database_name="chinook",
        title='Chinook </script><b> <script>alert(1)</script> "><img src=x onerror=alert(1)>',
        description="A music store",
        plugins=plugins,
        datasette_version="0.65.5",
        source_sha256="0" * 64,
        runtime_dir=runtime_dir,
        cache_dir=cache_dir,
        temp_dir=temp_dir,
        lazy_database_min_bytes=lazy_database_min_bytes,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Recorder:
    def __init__(self) -> None:
        self.states: list[str] = []
        self.lines: list[str] = []


@pytest.fixture(scope="module")
def built(chinook_build: Any) -> tuple[LocalStorage, BuildResult, Recorder]:
    """The session's ``chinook_build`` (Chinook with datasette-pretty-json, title ``HOSTILE_TITLE``)."""
    recorder = Recorder()
    recorder.states, recorder.lines = chinook_build.states, chinook_build.lines
    return chinook_build.storage, chinook_build.result, recorder


def test_it_reports_each_state_in_order(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    _, _, recorder = built
    assert recorder.states == [BuildPhase.VALIDATING, BuildPhase.RESOLVING, BuildPhase.BUNDLING, BuildPhase.UPLOADING]
    assert all(type(state) is BuildPhase for state in recorder.states), "a BuildPhase, never a bare string"
    assert recorder.states == ["validating", "resolving", "bundling", "uploading"]


def test_it_writes_the_bundle_layout(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    storage, _, _ = built
    # Less the gzip and Brotli copies (test_compressible_files_get_a_deterministic_gzip_copy and _a_brotli_copy_...).
    build_keys = {key for key in storage.keys("builds/b0000000000000001/") if not key.endswith((".gz", ".br"))}
    prefix = "builds/b0000000000000001/"
    modules = {f"js/{path.name}" for path in READER_MODULES.glob("*.mjs")}
    assert {"js/core.mjs", "js/sw-main.mjs", "js/worker-main.mjs", "js/shell.mjs", "js/bootstrap.mjs"} <= modules
    static = {key for key in build_keys if key.startswith(f"{prefix}-/")}
    assert {
        f"{prefix}{name}"
        for name in (
            "index.html",
            "sw.js",
            "config.mjs",
            "pyodide.mjs",
            "pyodide-lock.json",
            "manifest.json",
            "glasshouse_runtime.py",
            "plugins/glasshouse_report.py",
            "bytecode.zip",
            "data/chinook.db",
            "card.png",
            "icon-192.png",
            "icon-512.png",
            "manifest.webmanifest",
            "download.zip",
            *modules,
        )
    } == build_keys - static
    runtime = {key for key in storage.keys("runtime/") if not key.endswith((".gz", ".br"))}
    stdlib = {key for key in runtime if key.endswith("/python_stdlib.zip")}
    assert {f"runtime/pyodide-{PYODIDE_VERSION}/{n}" for n in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm")} == (
        runtime - stdlib
    )
    # The compiled standard library, content-addressed (tests/builder/test_stdlib.py), not npm's source zip.
    (stdlib_key,) = stdlib
    assert re.fullmatch(r"runtime/pyodide-314\.0\.7/stdlib/[0-9a-f]{64}/python_stdlib\.zip", stdlib_key)
    assert stdlib_key.split("/")[3] == sha256(storage.open(stdlib_key).read())
    for key in storage.keys("wheels/"):
        assert re.fullmatch(r"wheels/[0-9a-f]{64}/[A-Za-z0-9_.+-]+\.whl", key), key


def test_every_lock_file_entry_matches_the_stored_wheel(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    storage, _, _ = built
    lock = json.loads(storage.open("builds/b0000000000000001/pyodide-lock.json").read())
    assert lock["info"]["python"].startswith("3.14")
    names = set(lock["packages"])
    assert {"datasette", "datasette-pretty-json", "jinja2", "markupsafe", "pyyaml"} <= names
    assert not {"pip", "setuptools", "numpy"} & names, "only the bundle's own wheels belong in the lock"
    for package in lock["packages"].values():
        digest, filename = package["file_name"].split("/")
        assert digest == package["sha256"]
        data = storage.open(f"wheels/{digest}/{filename}").read()
        assert sha256(data) == package["sha256"], filename
        assert set(package["depends"]) <= names
    for pure in ("markupsafe", "pyyaml"):
        assert lock["packages"][pure]["file_name"].endswith("-py3-none-any.whl")


def test_the_manifest_lists_every_file_with_its_size_and_hash(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, _ = built
    stored = storage.open("builds/b0000000000000001/manifest.json").read()
    assert stored.decode() == result.manifest.to_json()
    manifest = Manifest.from_json(stored)
    assert manifest == result.manifest
    assert manifest.plugins == ("datasette-pretty-json",)
    assert manifest.datasette_settings["sql_time_limit_ms"] == 1000
    assert manifest.source_sha256 == "0" * 64
    for entry in manifest.files:
        data = storage.open(entry.key).read()
        assert len(data) == entry.size, entry.key
        assert sha256(data) == entry.sha256, entry.key


def test_compressible_files_get_a_deterministic_gzip_copy(
    built: tuple[LocalStorage, BuildResult, Recorder], tmp_path: Path
) -> None:
    storage, result, _ = built
    entries = {entry.key: entry for entry in result.manifest.files}
    gzipped = {key for key, entry in entries.items() if entry.gzip}
    prefix = "builds/b0000000000000001/"
    # Text, wasm, the database and the zips of stored entries get one; wheels and images never.
    stdlib = next(key for key in entries if key.endswith("/python_stdlib.zip"))
    assert {
        f"{prefix}data/chinook.db", f"{prefix}index.html", f"{prefix}config.mjs", f"{prefix}js/core.mjs",
        f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm", f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.mjs",
        f"{prefix}bytecode.zip", stdlib,
    } <= gzipped  # fmt: skip
    assert not {key for key in gzipped if key.endswith((".whl", ".png", ".woff", ".woff2"))}
    # Only the build's own copies and the shared runtime's are stored, each listed.
    stored = {key for key in [*storage.keys("builds/"), *storage.keys("runtime/"), *storage.keys("wheels/")]
              if key.endswith(".gz") and key.startswith((prefix, "runtime/", "wheels/"))}  # fmt: skip
    assert stored == {entries[key].gzip.key for key in gzipped}
    for key in gzipped:
        copy = storage.open(key + ".gz").read()
        assert entries[key].gzip == GzipCopy(key=key + ".gz", size=len(copy))
        assert gzip.decompress(copy) == storage.open(key).read(), key
        assert len(copy) <= entries[key].size * GZIP_MAX_RATIO, key
        assert copy[4:8] == b"\0\0\0\0", "mtime 0: the same bytes on every build"
    # The same input gives the same bytes.
    source = storage.local_path(f"{prefix}data/chinook.db")
    gzip_copy(source, tmp_path / "again.gz", DATABASE_GZIP_LEVEL)
    assert (tmp_path / "again.gz").read_bytes() == storage.open(f"{prefix}data/chinook.db.gz").read()
    # The precache list keeps the identity bytes: fetch decodes, and SRI is over the decoded body.
    database = next(item for item in build_config(storage)["precache"] if item["url"].endswith("/chinook.db"))
    assert database["size"] == entries[f"{prefix}data/chinook.db"].size
    identity = storage.open(f"{prefix}data/chinook.db").read()
    assert database["integrity"] == "sha256-" + base64.b64encode(hashlib.sha256(identity).digest()).decode()


def test_compressible_files_get_a_brotli_copy_where_it_beats_the_gzip_one(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, recorder = built
    entries = {entry.key: entry for entry in result.manifest.files}
    compressed = {key for key, entry in entries.items() if entry.brotli}
    prefix = "builds/b0000000000000001/"
    runtime = f"runtime/pyodide-{PYODIDE_VERSION}/"
    stdlib = next(key for key in entries if key.endswith("/python_stdlib.zip"))
    assert {
        f"{prefix}data/chinook.db", f"{prefix}index.html", f"{prefix}config.mjs", f"{prefix}js/core.mjs",
        f"{prefix}-/static/app.css", f"{runtime}pyodide.asm.wasm", f"{runtime}pyodide.asm.mjs", f"{runtime}pyodide.mjs",
        f"{prefix}bytecode.zip", stdlib,
    } <= compressed  # fmt: skip
    # The zips hold stored entries, so their copies compress across entries: the standard library's
    # Brotli copy is under 0.8 of the zip its entries deflated one by one would make (0.74 at the
    # suite's quality 9, tests/conftest.py; 0.70 at production's 11, which make bench measures).
    for key in (stdlib, f"{prefix}bytecode.zip"):
        with zipfile.ZipFile(storage.local_path(key)) as archive:
            assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}, key
    stdlib_entry = entries[stdlib]
    assert stdlib_entry.brotli and stdlib_entry.brotli.size < 0.8 * _deflated_size(storage.local_path(stdlib))
    assert not {key for key in compressed if not compressible(key)}
    # Only the copies the manifest lists are stored, each the file's bytes once decoded (integrity).
    stored = {key for key in [*storage.keys("builds/"), *storage.keys("runtime/"), *storage.keys("wheels/")]
              if key.endswith(".br")}  # fmt: skip
    assert stored == {entries[key].brotli.key for key in compressed}
    for key in compressed:
        copy = storage.open(key + ".br").read()
        assert entries[key].brotli == BrotliCopy(key=key + ".br", size=len(copy))
        assert brotli.decompress(copy) == storage.open(key).read(), key
        # Only where it wins: smaller than the gzip copy, or than 0.9 of a file without one.
        gzipped = entries[key].gzip
        assert len(copy) < (gzipped.size if gzipped else entries[key].size * GZIP_MAX_RATIO), key
    # The runtime's wasm: 3.10 MB of 9.6 at the suite's quality 9, 2.74 MB at 11, against gzip's 3.53.
    wasm = entries[f"{runtime}pyodide.asm.wasm"]
    assert wasm.brotli and wasm.gzip and wasm.brotli.size < 0.9 * wasm.gzip.size
    line = next(line for line in recorder.lines if line.startswith("Bundle written: "))
    assert f"with the {len(compressed)} Brotli copies" in line


def _deflated_size(path: Path) -> int:
    """The size of the zip ``path``'s entries would make deflated one by one (level 9), as builds wrote them before."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info))
    return len(out.getvalue())


def test_the_build_stores_the_self_host_zip_once_laid_out_as_a_static_site(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, recorder = built
    key = "builds/b0000000000000001/download.zip"
    size = storage.size(key)
    assert result.manifest.download == DownloadZip(key=key, size=size)
    assert result.download_bytes == size
    assert content_type_for(key) == "application/zip"
    assert any(line.startswith("Self-host zip written in ") and f"{size:,} bytes" in line for line in recorder.lines)
    # Never a bundle file: not in the manifest's files, not in what a reader's worker downloads.
    entries = result.manifest.files
    assert not [entry for entry in entries if "download" in entry.key]
    assert not [item for item in build_config(storage)["precache"] if "download" in item["url"]]
    with storage.open(key) as fh, zipfile.ZipFile(fh) as archive:
        assert archive.testzip() is None
        # Every listed file at its URL path, then the README: no gzip or Brotli copy, no manifest, not itself.
        assert archive.namelist() == [*(entry.url.removeprefix("/") for entry in entries), "README.txt"]
        for entry in entries:
            info = archive.getinfo(entry.url.removeprefix("/"))
            assert archive.read(info) == storage.open(entry.key).read(), entry.key
            # Text, wasm and SQLite deflated; wheels, zips and images stored as they are.
            assert info.compress_type == (zipfile.ZIP_DEFLATED if compressible(entry.key) else zipfile.ZIP_STORED)
        names = archive.namelist()
        assert {"index.html", "sw.js", "_build/b0000000000000001/data/chinook.db"} <= set(names)
        assert any(name.startswith("_wheels/") and name.endswith(".whl") for name in names)
        assert any(name.startswith("-/static/") for name in names)
        readme = archive.read("README.txt").decode()
    assert "python3 -m http.server 8000" in readme
    assert "_build/b0000000000000001/data/chinook.db  the database (" in readme


def build_config(storage: LocalStorage, build_id: str = "b0000000000000001") -> dict:
    """The build's generated config.mjs (``export default {...};``) as a dict."""
    source = storage.open(f"builds/{build_id}/config.mjs").read().decode()
    return json.loads(re.search(r"^export default (\{.*\});$", source, re.MULTILINE).group(1))


def test_the_build_records_one_policy_for_the_server_and_the_readers_browser(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, _ = built
    policy = gallery_policy(["datasette-pretty-json"])
    assert result.manifest.content_security_policy == policy
    # What the Service Worker and the Worker stamp on every answer they build: the same policy,
    # and no-referrer whatever the gallery's visibility (it may change after the worker is installed).
    assert build_config(storage)["securityHeaders"] == [
        ["Content-Security-Policy", policy], ["X-Content-Type-Options", "nosniff"], ["Referrer-Policy", "no-referrer"],
    ]  # fmt: skip
    assert build_config(storage)["settings"] == {"num_sql_threads": 0, "sql_time_limit_ms": 1000, "max_returned_rows": 1000}


def test_the_service_worker_is_a_static_import_of_the_shared_runtime(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, _, _ = built
    sw = storage.open("builds/b0000000000000001/sw.js").read().decode()
    assert 'import "/_build/b0000000000000001/js/sw-main.mjs";' in sw
    pyodide = storage.open("builds/b0000000000000001/pyodide.mjs").read().decode()
    assert f'export {{ loadPyodide }} from "/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.mjs";' in pyodide
    assert f'export {{ default as createPyodideModule }} from "/_runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.mjs";' in pyodide
    page = storage.open("builds/b0000000000000001/index.html").read().decode()
    assert '<script type="module" src="/_build/b0000000000000001/js/bootstrap.mjs"></script>' in page
    for path in READER_MODULES.glob("*.mjs"):
        assert storage.open(f"builds/b0000000000000001/js/{path.name}").read() == path.read_bytes(), path.name
        assert "__" not in re.sub(r"__glasshouseShell", "", path.read_text()), f"{path.name} has a placeholder"


def test_datasettes_and_the_plugins_static_files_are_bundle_files_at_their_urls(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, _ = built
    static = {f.url: f for f in result.manifest.files if f.url.startswith("/-/")}
    assert "/-/static/app.css" in static
    assert any(url.startswith("/-/static/codemirror-") for url in static)
    # datasette-pretty-json has no static files; Datasette's own must all be there.
    assert all(url.startswith(("/-/static/", "/-/static-plugins/")) for url in static)
    entry = static["/-/static/app.css"]
    assert entry.key == "builds/b0000000000000001/-/static/app.css"
    assert b"font-family" in storage.open(entry.key).read()


def test_the_service_worker_precaches_every_file_with_its_integrity(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, _ = built
    config = build_config(storage)
    assert config["packages"] == ["datasette", "datasette-pretty-json"]
    assert sum(f["size"] for f in config["precache"]) == config["totalBytes"] == result.bundle_bytes
    url_to_key = {
        "/_runtime/": "runtime/",
        "/_wheels/": "wheels/",
        "/_build/": "builds/",
        "/-/": "builds/b0000000000000001/-/",
    }
    assert any(entry["url"] == "/-/static/app.css" for entry in config["precache"])
    for entry in config["precache"]:
        prefix = next(p for p in url_to_key if entry["url"].startswith(p))
        data = storage.open(url_to_key[prefix] + entry["url"][len(prefix) :]).read()
        assert entry["integrity"] == "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_every_bundle_ships_and_registers_the_built_in_report_plugin(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, _, _ = built
    config = build_config(storage)
    url = "/_build/b0000000000000001/plugins/glasshouse_report.py"
    assert config["pluginModules"] == [{"name": "glasshouse_report", "url": url}]
    assert url in {entry["url"] for entry in config["precache"]}
    shipped = storage.open("builds/b0000000000000001/plugins/glasshouse_report.py").read()
    assert shipped == BUILTIN_PLUGINS["glasshouse_report"].read_bytes()


def test_the_title_cannot_break_out_of_the_bootstrap_page(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    storage, _, _ = built
    page = storage.open("builds/b0000000000000001/index.html").read().decode()
    assert "Chinook &lt;/script&gt;&lt;b&gt; &lt;script&gt;alert(1)&lt;/script&gt; &quot;&gt;&lt;img src=x" in page
    for markup in ("Chinook </script>", "<script>alert(1)", "<img src=x", '"><img'):
        assert markup not in page


def test_the_database_copy_is_canonical_and_complete(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    storage, _, _ = built
    path = storage.local_path("builds/b0000000000000001/data/chinook.db")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert conn.execute("select count(*) from Album").fetchone() == (347,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


@pytest.fixture(scope="module")
def lazy_second_build(
    built: tuple[LocalStorage, BuildResult, Recorder], chinook: Path, pyodide_runtime: Path, wheel_cache: Path
) -> tuple[BuildResult, list[str]]:
    """A second build of Chinook into ``built``'s store, whose database is read lazily (threshold 0): ``(result, log)``."""
    storage, _, _ = built
    lines: list[str] = []
    second = BuildDirector(
        request_for(chinook, pyodide_runtime, wheel_cache, build_id="b0000000000000002", plugins=("datasette-pretty-json",),
                    lazy_database_min_bytes=0),
        storage=storage,
        on_state=lambda state: None,
        log=lines.append,
    ).run()  # fmt: skip
    return second, lines


def test_a_second_build_stores_shared_files_once(
    built: tuple[LocalStorage, BuildResult, Recorder], lazy_second_build: tuple[BuildResult, list[str]]
) -> None:
    storage, first, _ = built
    second, lines = lazy_second_build
    # Only the second build's own files were stored: the runtime and the wheels were there already.
    own = list(storage.keys("builds/b0000000000000002/"))
    assert f"Stored {len(own)} files (" in lines[-1], lines[-1]
    # The shared files' gzip copies are taken as stored, not made again: the same entries.
    def shared(result: BuildResult) -> list[ManifestFile]:
        return [entry for entry in result.manifest.files if not entry.key.startswith("builds/")]

    assert shared(second) == shared(first)
    assert {entry.key for entry in shared(second) if entry.gzip} >= {f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm"}


def test_a_lazy_database_is_stored_with_its_block_hashes_and_left_out_of_the_first_download(
    built: tuple[LocalStorage, BuildResult, Recorder], lazy_second_build: tuple[BuildResult, list[str]], tmp_path: Path
) -> None:
    storage, whole, _ = built
    lazy, lines = lazy_second_build
    config = build_config(storage, "b0000000000000002")
    database = storage.open("builds/b0000000000000002/data/chinook.db").read()
    hashes = storage.open("builds/b0000000000000002/data/chinook.blocks.sha256").read()
    # One sha256 per 64 KiB block, the last one shorter.
    blocks = [database[i : i + 65536] for i in range(0, len(database), 65536)]
    assert hashes == b"".join(hashlib.sha256(block).digest() for block in blocks)
    assert config["database"] == {
        "url": "/_build/b0000000000000002/data/chinook.db",
        "path": "/data/chinook.db",
        "size": len(database),
        "integrity": "sha256-" + base64.b64encode(hashlib.sha256(database).digest()).decode(),
        "lazy": {"blockBytes": 65536, "blocks": len(blocks), "hashesURL": "/_build/b0000000000000002/data/chinook.blocks.sha256"},
        "tableCounts": build_config(storage)["database"]["tableCounts"],
    }
    # Datasette suggests no facets to readers of a lazy database (their queries read whole tables).
    assert config["settings"] == {**build_config(storage)["settings"], "suggest_facets": False}
    # A reader downloads the hash list first, not the database; the build page's figure says so.
    precached = {entry["url"] for entry in config["precache"]}
    assert config["database"]["lazy"]["hashesURL"] in precached and config["database"]["url"] not in precached
    assert lazy.manifest.first_visit_bytes == config["totalBytes"] == whole.bundle_bytes - len(database) + len(hashes)
    # What a reader may download, as storage quotas count it: the database too.
    assert lazy.bundle_bytes == whole.bundle_bytes + len(hashes)
    # The database is still a bundle file, served and in the self-host zip (other browsers read it whole).
    assert "builds/b0000000000000002/data/chinook.db" in {entry.key for entry in lazy.manifest.files}
    assert any(f"read it in {len(blocks)} blocks of 64 KiB" in line for line in lines), lines
    # Its compressed copies serve only browsers without JSPI: made at the fast levels.
    source = tmp_path / "chinook.db"
    source.write_bytes(database)
    fast_gzip, fast_brotli = source.with_suffix(".gz"), source.with_suffix(".br")
    gzip_copy(source, fast_gzip, LAZY_DATABASE_GZIP_LEVEL)
    brotli_copy(source, fast_brotli, LAZY_DATABASE_QUALITY)
    assert storage.open("builds/b0000000000000002/data/chinook.db.gz").read() == fast_gzip.read_bytes()
    assert storage.open("builds/b0000000000000002/data/chinook.db.br").read() == fast_brotli.read_bytes()
    # A build below its threshold (the first, no threshold at all) reads the database whole.
    assert build_config(storage)["database"]["lazy"] is None


@pytest.mark.parametrize(
    ("plugins", "content", "message"),
    [
        (("datasette-does-not-exist",), None, "Unknown plugin datasette-does-not-exist"),
        ((), b"definitely not sqlite", "not a SQLite database"),
    ],
)
def test_a_bad_request_fails_with_a_reason_and_stores_nothing(
    tmp_path: Path,
    chinook: Path,
    pyodide_runtime: Path,
    wheel_cache: Path,
    plugins: tuple[str, ...],
    content: bytes | None,
    message: str,
) -> None:
    database = chinook
    if content is not None:
        database = tmp_path / "bad.db"
        database.write_bytes(content)
    storage = LocalStorage(tmp_path / "store")
    with pytest.raises(BuildError, match=message):
        BuildDirector(
            request_for(database, pyodide_runtime, wheel_cache, plugins=plugins),
            storage=storage,
            on_state=lambda state: None,
            log=lambda line: None,
        ).run()
    assert not any(p.is_file() for p in (tmp_path / "store").rglob("*"))


def test_the_bundle_carries_bytecode_for_the_modules_datasette_imports(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    import io
    import zipfile

    storage, _, _ = built
    archive = zipfile.ZipFile(io.BytesIO(storage.open("builds/b0000000000000001/bytecode.zip").read()))
    names = set(archive.namelist())
    assert "datasette/__pycache__/app.cpython-314.pyc" in names
    assert "datasette_pretty_json/__pycache__/__init__.cpython-314.pyc" in names
    header = archive.read("datasette/__pycache__/app.cpython-314.pyc")[:16]
    flags = int.from_bytes(header[4:8], "little")
    assert flags == 0b01, "unchecked-hash pyc: valid whatever the source timestamps in the browser"


def test_readers_boot_from_the_compiled_standard_library(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    import io
    import zipfile

    storage, result, recorder = built
    config = storage.open("builds/b0000000000000001/config.mjs").read().decode()
    (url,) = re.findall(r'"stdLibURL": "([^"]+)"', config)
    assert re.fullmatch(r"/_runtime/pyodide-314\.0\.7/stdlib/[0-9a-f]{64}/python_stdlib\.zip", url)
    assert url in {entry.url for entry in result.manifest.files}
    assert f"/_runtime/pyodide-{PYODIDE_VERSION}/python_stdlib.zip" not in config, "npm's source zip is not downloaded too"
    names = set(zipfile.ZipFile(io.BytesIO(storage.open("runtime" + url.removeprefix("/_runtime")).read())).namelist())
    assert {"json/__init__.pyc", "asyncio/base_events.pyc", "sqlite3/__init__.pyc"} <= names
    assert "json/__init__.py" not in names
    # The build's own Node check booted from it too (or from an import snapshot of a check that did:
    # its key includes the standard library), and rendered the pages.
    assert any(
        re.match(r"Compatibility check: (booted Pyodide|restored Pyodide with Datasette imported from the import snapshot) "
                 r"in Node, rendered ", line)
        for line in recorder.lines
    )  # fmt: skip


def test_the_build_records_the_tables_and_draws_a_share_card(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    storage, result, _ = built
    tables = {table["name"]: table for table in result.manifest.tables}
    assert len(tables) == 11
    assert tables["Album"] == {
        "name": "Album", "rows": 347, "columns": ["AlbumId", "Title", "ArtistId"], "types": ["integer", "nvarchar(160)", "integer"]
    }  # fmt: skip
    card_key = "builds/b0000000000000001/card.png"
    assert result.manifest.card == StoredImage(key=card_key, url="/_build/b0000000000000001/card.png")
    with storage.open(card_key) as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    # Drawn for pages about the gallery: the reader's first visit does not download it.
    config = storage.open("builds/b0000000000000001/config.mjs").read().decode()
    assert "card.png" not in config


def test_the_build_writes_a_web_app_manifest_with_icons_as_bundle_files(
    built: tuple[LocalStorage, BuildResult, Recorder],
) -> None:
    storage, result, _ = built
    prefix = "builds/b0000000000000001/"
    entries = {entry.key: entry for entry in result.manifest.files}
    # Listed in the build manifest like every bundle file: URL, size, sha256 (and a gzip copy for the JSON).
    manifest_entry = entries[f"{prefix}manifest.webmanifest"]
    assert manifest_entry.url == "/manifest.webmanifest"
    assert manifest_entry.gzip is not None
    assert [entries[f"{prefix}icon-{size}.png"].url for size in (192, 512)] == [
        "/_build/b0000000000000001/icon-192.png", "/_build/b0000000000000001/icon-512.png",
    ]  # fmt: skip
    web_app = json.loads(storage.open(manifest_entry.key).read())
    # The session build's title is markup: JSON keeps it as text (whatever a page does with it).
    assert web_app["name"] == 'Chinook </script><b> <script>alert(1)</script> "><img src=x onerror=alert(1)>'
    assert (web_app["start_url"], web_app["scope"], web_app["display"]) == ("/", "/", "standalone")
    assert [icon["src"] for icon in web_app["icons"]] == [entries[f"{prefix}icon-{size}.png"].url for size in (192, 512)]
    for size in (192, 512):
        with Image.open(storage.local_path(f"{prefix}icon-{size}.png")) as icon:
            assert icon.size == (size, size)
    # Every page links it: the bootstrap page from the build, the Service Worker's pages from config.mjs.
    page = storage.open(f"{prefix}index.html").read().decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page[: page.index("</head>")]
    assert build_config(storage)["webAppManifest"] == {"url": "/manifest.webmanifest", "themeColor": web_app["theme_color"]}
    # Not part of what a reader's first visit downloads.
    assert not [item for item in build_config(storage)["precache"] if "icon-" in item["url"] or "webmanifest" in item["url"]]


def test_the_build_scans_the_data_for_moderators(built: tuple[LocalStorage, BuildResult, Recorder]) -> None:
    _, result, recorder = built
    flagged = [(flag["table"], flag["column"], flag["kind"]) for flag in result.manifest.scan]
    assert flagged == [
        ("Customer", "Email", "email"), ("Customer", "Fax", "phone"), ("Customer", "Phone", "phone"),
        ("Employee", "Email", "email"), ("Employee", "Fax", "phone"), ("Employee", "Phone", "phone"),
    ]  # fmt: skip
    assert result.manifest.scan[0]["examples"] == ["l***@e***.br", "l***@s***.de"]
    assert (
        "Data scan: 6 columns flagged (email: Customer.Email, phone: Customer.Fax, phone: Customer.Phone, "
        "email: Employee.Email, phone: Employee.Fax, phone: Employee.Phone)." in recorder.lines
    )


@pytest.mark.parametrize("case", ["view_load_extension", "unknown_virtual_table", "corrupted_page"])
def test_a_hostile_database_fails_while_validating_and_stores_nothing(
    tmp_path: Path, corpus: dict[str, Path], pyodide_runtime: Path, wheel_cache: Path, case: str
) -> None:
    from tests.corpus.make_corpus import CASES

    expected = next(c.refusal for c in CASES if c.name == case)
    states: list[str] = []
    storage = LocalStorage(tmp_path / "store")
    (tmp_path / "tmp").mkdir()
    with pytest.raises(BuildError) as failed:
        BuildDirector(
            request_for(corpus[case], pyodide_runtime, wheel_cache, temp_dir=tmp_path / "tmp"),
            storage=storage,
            on_state=states.append,
            log=lambda line: None,
        ).run()
    assert expected in failed.value.args[0]
    assert states == ["validating"]
    assert not any(p.is_file() for p in (tmp_path / "store").rglob("*"))
    assert not any((tmp_path / "tmp").iterdir()), "the checker's temporary files are gone"


def test_a_wal_mode_database_builds_with_a_warning_in_the_log_and_the_manifest(
    tmp_path: Path, corpus: dict[str, Path], pyodide_runtime: Path, wheel_cache: Path
) -> None:
    lines: list[str] = []
    storage = LocalStorage(tmp_path / "store")
    result = BuildDirector(
        request_for(corpus["wal_mode"], pyodide_runtime, wheel_cache),
        storage=storage,
        on_state=lambda state: None,
        log=lines.append,
    ).run()
    (warning,) = result.manifest.warnings
    assert "not checkpointed before upload" in warning
    assert f"Warning: {warning}" in lines
    copy = storage.local_path("builds/b0000000000000001/data/chinook.db")
    assert copy.read_bytes()[18:20] == b"\x01\x01", "published in rollback-journal mode"


def test_a_background_gzip_copy_is_the_one_the_build_takes(tmp_path: Path) -> None:
    source = tmp_path / "data.db"
    source.write_bytes(b"SQLite rows " * 100_000)
    with BackgroundGzip() as background:
        background.start(source, tmp_path / "started.gz", DATABASE_GZIP_LEVEL)
        assert background.copy(source, tmp_path / "unused.gz") == tmp_path / "started.gz"
        # A file with no copy started is gzipped there and then.
        assert background.copy(tmp_path / "started.gz", tmp_path / "now.gz") == tmp_path / "now.gz"
    assert gzip.decompress((tmp_path / "started.gz").read_bytes()) == source.read_bytes()
    assert not (tmp_path / "unused.gz").exists()


def test_a_build_that_fails_stops_its_background_gzip_before_returning(tmp_path: Path) -> None:
    source = tmp_path / "big.db"
    source.write_bytes(os.urandom(64 * 1024 * 1024))  # seconds of work at level 9
    target = tmp_path / "big.db.gz"
    with pytest.raises(RuntimeError), BackgroundGzip() as background:
        background.start(source, target, 9)
        raise RuntimeError("the Node check failed")
    # Leaving the block stopped the copy and waited for the thread: nothing writes into the
    # build's folder any more, and no partial copy is left that could pass for a whole one.
    assert not any(thread.name.startswith("glasshouse-gzip") for thread in threading.enumerate())
    assert not target.exists()
