"""Write a gallery bundle and store it: the build pipeline as plain functions.

Layout written (DESIGN.md, "Bundle")::

    runtime/pyodide-<version>/<file>       shared, written once
    runtime/pyodide-<version>/stdlib/<sha256>/python_stdlib.zip   compiled standard library (builder.stdlib), shared
    wheels/<sha256>/<file>.whl             shared, written once
    builds/<build-id>/data/<name>.db       canonical copy of the upload
    builds/<build-id>/pyodide-lock.json    this build's wheels with sha256
    builds/<build-id>/glasshouse_runtime.py
    builds/<build-id>/plugins/<name>.py    Glasshouse's built-in Datasette plugins (the footer's "Report" link)
    builds/<build-id>/bytecode.zip
    builds/<build-id>/js/*.mjs             the browser runtime (builder/runtime/js/), served at /_build/<id>/js/
    builds/<build-id>/config.mjs           generated: this build's values for the runtime
    builds/<build-id>/pyodide.mjs          generated: re-exports this Pyodide version's loader
    builds/<build-id>/-/static/...         Datasette's static files, served at /-/static/...
    builds/<build-id>/-/static-plugins/... the plugins' static files, served at /-/static-plugins/...
    <key>.gz                               gzip copy of a text, wasm or database file above
    builds/<build-id>/download.zip         the self-host zip of the files above (builder.download)
    builds/<build-id>/manifest.json
    builds/<build-id>/sw.js                generated, written last but one
    builds/<build-id>/index.html           written last

The same build id always writes the same keys, so a retried build overwrites
itself harmlessly.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from builder.card import render_card
from builder.catalog import UnknownPlugin, check_plugins, load_lock
from builder.compat import BUILTIN_PLUGINS, CompatError, CompatOutOfMemory, CompatRequest, check_bundle
from builder.csp import gallery_policy, security_headers
from builder.download import DOWNLOAD_NAME, README_NAME, bundle_listing, download_key, write_bundle_zip
from builder.manifest import DownloadZip, GzipCopy, Manifest, ManifestDatabase, ManifestFile, StoredImage
from builder.scan import scan_database
from builder.sqlite_check import CheckLimits, InvalidDatabase, check_database
from builder.stdlib import STDLIB_NAME, compiled_stdlib
from builder.storage import GZIP_SUFFIX, Storage, compressible
from builder.tables import describe_tables
from builder.wheels import TamperedWheel, closure, fetch_wheels, sha256_file, write_pyodide_lock

RUNTIME_TEMPLATES = Path(__file__).parent / "runtime"
#: The browser runtime's ES modules, copied into every build (DESIGN.md, "Browser runtime").
RUNTIME_MODULES = RUNTIME_TEMPLATES / "js"
#: Files of the Pyodide npm package that a bundle needs, in the order the browser wants them.
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
#: Datasette settings of every bundle: SQL runs on Pyodide's event loop, 1 s per query (a runaway
#: query ends with Datasette's time-limit error), at most 1,000 rows per page or query answer.
#: ``trusted_schema=OFF`` on every connection comes from glasshouse_runtime.py.
DATASETTE_SETTINGS = {"num_sql_threads": 0, "sql_time_limit_ms": 1000, "max_returned_rows": 1000}
#: A gzip copy is stored only when it is at most this fraction of the file's size.
GZIP_MAX_RATIO = 0.9
#: The database's gzip level. Measured on the 217 MB benchmark database (bench/make_database.py):
#: level 9 took about 4 times as long as level 6 for a copy 2 % smaller (0.368 against 0.377 of the file).
DATABASE_GZIP_LEVEL = 6


class BuildError(Exception):
    """The build cannot succeed as submitted; ``args[0]`` tells the publisher what to do. Not retried."""


@dataclass(frozen=True)
class BuildRequest:
    """Everything one build needs, as plain values.

    ``database_path`` is a local copy of the upload; ``database_name`` the slug
    Datasette shows in URLs (``[a-z0-9_-]+``); ``pyodide_version`` matches
    ``runtime_dir``.
    """

    build_id: str
    database_path: Path
    database_name: str
    title: str
    description: str
    plugins: tuple[str, ...]
    datasette_version: str
    source_sha256: str
    pyodide_version: str = "314.0.7"
    #: Publisher metadata and plugin settings (``builder.metadata.parse_metadata``); its keys win.
    metadata: dict = field(default_factory=dict)
    #: Limits of the database check and copy (``builder.sqlite_check.check_database``).
    check_limits: CheckLimits = field(default_factory=CheckLimits)


@dataclass(frozen=True)
class BuildResult:
    """``bundle_bytes``: what a reader downloads on a first visit; ``manifest``: what manifest.json says;
    ``download_bytes``: the size of the self-host zip (``builds/<build-id>/download.zip``).

    ``manifest.warnings`` lists sentences the publisher should read although the build
    succeeded (e.g. a WAL-mode upload's un-checkpointed changes are missing).
    """

    manifest: Manifest
    bundle_bytes: int
    download_bytes: int


StateCallback = Callable[[str], None]
Log = Callable[[str], None]


def sri(sha256_hex: str) -> str:
    """Return the Subresource Integrity string (``sha256-<base64>``) for a hex sha256 digest."""
    return "sha256-" + base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _module_sources(build_id: str, runtime_url: str, config: dict) -> dict[str, str]:
    """The generated files that carry this build's values to the static ES modules.

    ``config.mjs`` exports ``config``; ``pyodide.mjs`` re-exports this Pyodide
    version's loader (module Service Workers may only import statically);
    ``sw.js`` is the Service Worker entry point at ``/sw.js``.
    """
    return {
        "config.mjs": f"// Generated by builder/bundle.py for build {build_id}.\nexport default {_script_json(config)};\n",
        "pyodide.mjs": (
            f'export {{ loadPyodide }} from "{runtime_url}pyodide.mjs";\n'
            f'export {{ default as createPyodideModule }} from "{runtime_url}pyodide.asm.mjs";\n'
        ),
        "sw.js": f'// Glasshouse gallery Service Worker of build {build_id}.\nimport "/_build/{build_id}/js/sw-main.mjs";\n',
    }


class GzipCancelled(Exception):
    """A background gzip copy was stopped because the build ended first."""


def gzip_copy(source: Path, target: Path, level: int = 9, stop: threading.Event | None = None) -> int:
    """Write ``source`` gzipped to ``target`` and return the copy's size in bytes.

    ``level`` 1-9; ``mtime`` 0 and no file name in the header: the same input always gives the
    same bytes. Streams in 1 MiB chunks (a database may be 1 GB). Raises ``OSError``, and
    ``GzipCancelled`` once ``stop`` is set (``target`` removed: closing the gzip stream would
    have made a valid gzip file of the first part).
    """
    try:
        with (
            source.open("rb") as src,
            target.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0) as out,
        ):
            while chunk := src.read(1024 * 1024):
                if stop is not None and stop.is_set():
                    raise GzipCancelled(f"gzip copy of {source.name} stopped")
                out.write(chunk)
    except GzipCancelled:
        target.unlink(missing_ok=True)
        raise
    return target.stat().st_size


class BackgroundGzip:
    """Gzip copies made in one thread while the build goes on (zlib and crc32 release the GIL).

    A context manager: leaving it stops an unfinished copy (``GzipCancelled``) and waits for
    the thread, so nothing writes into a build's folder after the build has returned.
    """

    def __enter__(self) -> Self:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glasshouse-gzip")
        self._stop = threading.Event()
        self._copies: dict[Path, tuple[Path, Future[int]]] = {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, source: Path, target: Path, level: int) -> None:
        """Begin writing ``source`` gzipped (``level``) to ``target``."""
        self._copies[source] = (target, self._pool.submit(gzip_copy, source, target, level, self._stop))

    def copy(self, source: Path, target: Path) -> Path:
        """The gzip copy of ``source``: the one started for it (waiting for it), else one written now at ``target``."""
        if source in self._copies:
            started, future = self._copies.pop(source)
            future.result()
            return started
        gzip_copy(source, target)
        return target


def _render(template: str, replacements: dict[str, str]) -> str:
    text = (RUNTIME_TEMPLATES / template).read_text()
    for placeholder, value in replacements.items():
        if placeholder not in text:
            raise AssertionError(f"{template} lacks {placeholder}")
        text = text.replace(placeholder, value)
    return text


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element or a JS module (no ``</script>``, no U+2028)."""
    return (
        json.dumps(value, sort_keys=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def build_bundle(
    request: BuildRequest,
    *,
    storage: Storage,
    runtime_dir: Path,
    cache_dir: Path,
    on_state: StateCallback,
    log: Log,
    temp_dir: Path | None = None,
    node_max_old_space_mb: int | None = None,
) -> BuildResult:
    """Validate, resolve, write and store the bundle of one build.

    Validating runs ``builder.sqlite_check.check_database`` within ``request.check_limits``
    (a child process with memory, CPU and wall-clock limits); it also writes the canonical
    copy, the only form of the upload that is published. Its warnings go to ``log`` and to
    ``manifest["warnings"]``.

    Calls ``on_state`` with ``validating``, ``resolving``, ``bundling`` and
    ``uploading`` as it goes, and ``log`` with lines for the build log. Raises
    ``BuildError`` for problems the publisher must fix (bad database, unknown
    plugin) and for a cached wheel that no longer matches the lock (retrying cannot help), ``builder.storage.StorageError`` and ``builder.wheels.WheelError``
    for transient faults, ``FileNotFoundError`` if ``runtime_dir`` lacks the
    Pyodide files (run ``make setup``) or Node.js is not on PATH, and
    ``builder.tables.DescribeError`` or ``builder.scan.ScanError`` if the checked
    copy cannot be read after all. Before uploading, ``builder.compat.check_bundle``
    boots the bundle in Node, its heap capped at ``node_max_old_space_mb`` (MB; ``None``:
    Node's default); if it fails, the traceback goes to ``log`` and ``BuildError`` is raised.

    Every temporary file (pip's downloads, the bundle's staging folder, Node's scratch) goes
    under ``temp_dir`` (default: the system's temporary folder) and is removed before returning.
    """
    build_prefix = f"builds/{request.build_id}/"
    runtime_prefix = f"runtime/pyodide-{request.pyodide_version}/"
    # BackgroundGzip is left first: its thread stops before the folder is removed.
    with tempfile.TemporaryDirectory(prefix="glasshouse-bundle-", dir=temp_dir) as tmp, BackgroundGzip() as background:
        work = Path(tmp)
        (work / "gzip").mkdir()
        db_file = work / f"{request.database_name}.db"
        on_state("validating")
        # The raw upload is only ever read by the checker's child process; what is published is
        # the copy it writes with the same hardened settings (builder.sqlite_check).
        try:
            info = check_database(
                request.database_path, copy_to=db_file, limits=request.check_limits, temp_dir=work, log=log
            )
        except InvalidDatabase as exc:
            raise BuildError(exc.args[0]) from exc
        log(f"Database is valid SQLite: {len(info.tables)} tables, {len(info.views)} views, {info.size_bytes:,} bytes.")
        for warning in info.warnings:
            log(f"Warning: {warning}")
        log(f"Wrote the canonical database copy (rollback journal): {db_file.stat().st_size:,} bytes.")
        # The copy is final: gzip it while the rest of the build runs (for a big database, the
        # longest step after the check).
        background.start(db_file, work / "gzip" / "database.gz", DATABASE_GZIP_LEVEL)

        on_state("resolving")
        try:
            plugins = check_plugins(list(request.plugins), request.datasette_version)
            lock = load_lock(request.datasette_version)
        except (UnknownPlugin, ValueError) as exc:
            raise BuildError(exc.args[0]) from exc
        wheels = closure(lock, ["datasette", *plugins])
        log(f"Datasette {request.datasette_version} with {', '.join(plugins) or 'no plugins'}: {len(wheels)} pinned wheels.")
        try:
            wheel_paths = fetch_wheels(wheels, cache_dir, log, temp_dir=temp_dir)
        except TamperedWheel as exc:
            log(f"Wheel integrity check failed: {exc.args[0]}")
            raise BuildError(
                "A pinned package file on our build server failed its integrity check, so the build stopped "
                "and nothing was published. This is our fault, not your database's: try again later, and "
                "tell us if it keeps failing."
            ) from exc
        missing_runtime = [name for name in PYODIDE_FILES if not (runtime_dir / name).is_file()]
        if missing_runtime:
            raise FileNotFoundError(
                f"Pyodide runtime incomplete in {runtime_dir}: missing {missing_runtime}; run `make setup`."
            )

        on_state("bundling")
        tables = describe_tables(db_file)
        log(f"Tables: {', '.join(f'{t['name']} ({t['rows']:,} rows)' for t in tables) or 'none'}.")
        scan = scan_database(db_file)
        flagged = ", ".join(f"{flag['kind']}: {flag['table']}.{flag['column']}" for flag in scan)
        log(f"Data scan: {len(scan)} columns flagged ({flagged})." if scan else "Data scan: no columns flagged.")
        # The share card is for pages that link to the gallery; a build without one still works.
        card: Path | None = work / "card.png"
        try:
            render_card(request.title, tables, card)
        except (OSError, ValueError) as exc:
            log(f"Share card not drawn ({exc}); the gallery page shows none.")
            card = None
        lock_file = work / "pyodide-lock.json"
        write_pyodide_lock(runtime_dir / "pyodide-lock.json", cache_dir, list(wheel_paths.values()), lock_file)
        runtime_module = work / "glasshouse_runtime.py"
        runtime_module.write_bytes((RUNTIME_TEMPLATES / "glasshouse_runtime.py").read_bytes())
        metadata = {"title": request.title, "description": request.description, **request.metadata}
        # Made once per runtime and cached; without it (logged) readers boot from the source zip.
        stdlib = compiled_stdlib(runtime_dir, cache_dir, request.pyodide_version, log=log)

        # Boot the bundle once in Node before anything is published; the same run leaves the
        # bytecode of every module Datasette imported, which readers then need not compile.
        bytecode = work / "bytecode.zip"
        try:
            report = check_bundle(
                CompatRequest(
                    runtime_dir=runtime_dir, cache_dir=cache_dir, lock_file=lock_file, packages=("datasette", *plugins),
                    database=db_file, database_name=request.database_name, settings=DATASETTE_SETTINGS,
                    metadata=metadata, bytecode_out=bytecode, static_out=work / "static",
                    max_old_space_mb=node_max_old_space_mb, temp_dir=work, stdlib=stdlib,
                )
            )
        except CompatOutOfMemory as exc:
            log(f"Compatibility check failed: {exc.args[0]}\n{exc.log}")
            raise BuildError(
                f"The build {exc.args[0]}. Try a smaller database or fewer plugins; "
                "if it is well within the upload limit, tell us: the limit may be set too low."
            ) from exc
        except CompatError as exc:
            log(f"Compatibility check failed: {exc.args[0]}\n{exc.log}")
            raise BuildError(f"The bundle did not start in Pyodide: {exc.args[0]}. The build log has the traceback.") from exc
        log(f"Compatibility check: {report.summary()}")
        log(f"Compatibility check stages: {report.stages()}")

        # (storage key, local file, URL on the content origin) of everything the reader downloads.
        runtime_url = f"/_runtime/pyodide-{request.pyodide_version}/"
        runtime_files = {name: runtime_dir / name for name in PYODIDE_FILES if name != STDLIB_NAME}
        # The compiled copy is content-addressed: a recompiled one gets a new key, never overwrites one.
        stdlib_name = f"stdlib/{sha256_file(stdlib)}/{STDLIB_NAME}" if stdlib else STDLIB_NAME
        runtime_files[stdlib_name] = stdlib or runtime_dir / STDLIB_NAME
        files: list[tuple[str, Path, str]] = [
            (f"{runtime_prefix}{name}", local, f"{runtime_url}{name}") for name, local in runtime_files.items()
        ]
        files += [
            (f"wheels/{path.parent.name}/{path.name}", path, f"/_wheels/{path.parent.name}/{path.name}")
            for path in wheel_paths.values()
        ]
        files += [
            (f"{build_prefix}{rel}", local, f"/_build/{request.build_id}/{rel}")
            for rel, local in (
                ("pyodide-lock.json", lock_file),
                ("glasshouse_runtime.py", runtime_module),
                *((f"plugins/{name}.py", source) for name, source in BUILTIN_PLUGINS.items()),
                ("bytecode.zip", bytecode),
                (f"data/{db_file.name}", db_file),
                *((f"js/{module.name}", module) for module in sorted(RUNTIME_MODULES.glob("*.mjs"))),
            )
        ]
        # Datasette's static files: real files at Datasette's own URLs, the same bytes in both modes.
        # Precached like the rest, so Service Worker mode works offline and downloads nothing later.
        files += [
            (f"{build_prefix}{url.removeprefix('/')}", work / "static" / url.removeprefix("/"), url)
            for url in report.static_files
        ]
        # Hash each file once: the precache list wants SRI, the manifest hex (the database may be 1 GB).
        digests = {local: sha256_file(local) for _, local, _ in files}
        precache = [
            {"url": url, "size": local.stat().st_size, "integrity": sri(digests[local])} for _, local, url in files
        ]
        total_bytes = sum(f["size"] for f in precache)
        policy = gallery_policy(plugins)
        runtime_config = {
            "buildId": request.build_id,
            "runtimeURL": runtime_url,
            "stdLibURL": f"{runtime_url}{stdlib_name}",
            "wheelsURL": "/_wheels/",
            "lockFileURL": f"/_build/{request.build_id}/pyodide-lock.json",
            "runtimeModuleURL": f"/_build/{request.build_id}/glasshouse_runtime.py",
            "pluginModules": [
                {"name": name, "url": f"/_build/{request.build_id}/plugins/{name}.py"} for name in BUILTIN_PLUGINS
            ],
            "bytecodeURL": f"/_build/{request.build_id}/bytecode.zip",
            "packages": ["datasette", *plugins],
            "database": {"url": f"/_build/{request.build_id}/data/{db_file.name}", "path": f"/data/{db_file.name}"},
            "precache": precache,
            "totalBytes": total_bytes,
            "settings": DATASETTE_SETTINGS,
            "metadata": metadata,
            "embedClientURL": f"/_build/{request.build_id}/js/embed-client.mjs",
            # Stamped on every response the Service Worker or the Worker builds (routes.mjs). The
            # gallery's visibility may change after a reader's worker is installed, so these
            # answers always take the unlisted gallery's stricter Referrer-Policy (no-referrer).
            "securityHeaders": [list(header) for header in security_headers(policy, unlisted=True)],
        }
        generated: list[tuple[str, Path, str]] = []
        for name, text in _module_sources(request.build_id, runtime_url, runtime_config).items():
            (work / name).write_text(text)
            url = "/sw.js" if name == "sw.js" else f"/_build/{request.build_id}/{name}"
            generated.append((f"{build_prefix}{name}", work / name, url))
        index_html = work / "index.html"
        index_html.write_text(
            _render("index.html", {"__TITLE__": html.escape(request.title), "__BUILD_ID__": request.build_id})
        )
        # Files for pages about the gallery, not for the reader's runtime: not precached.
        extras = [(f"{build_prefix}card.png", card, f"/_build/{request.build_id}/card.png")] if card else []
        listed = [*files, *extras, *generated, (f"{build_prefix}index.html", index_html, "/index.html")]
        # Gzip copies of the compressible files that shrink enough (gallery.content serves them to
        # readers that accept gzip); the precache list keeps the identity bytes' size and integrity.
        gzipped: dict[str, tuple[Path | None, int]] = {}
        for number, (key, local, _) in enumerate(listed):
            if not compressible(key):
                continue
            if not key.startswith(build_prefix) and storage.exists(key + GZIP_SUFFIX):
                # A shared file's gzip copy, stored by an earlier build: the same bytes (its key
                # names its content), so it is neither made nor stored again.
                gzipped[key] = (None, storage.size(key + GZIP_SUFFIX))
                continue
            copy = background.copy(local, work / "gzip" / f"{number}.gz")
            if copy.stat().st_size <= local.stat().st_size * GZIP_MAX_RATIO:
                gzipped[key] = (copy, copy.stat().st_size)
        gzip_bytes = sum(gzipped[key][1] if key in gzipped else local.stat().st_size for key, local, _ in files)
        manifest = Manifest(
            build_id=request.build_id,
            pyodide_version=request.pyodide_version,
            datasette_version=request.datasette_version,
            plugins=tuple(plugins),
            database=ManifestDatabase(name=request.database_name, key=f"{build_prefix}data/{db_file.name}",
                                      tables=info.tables, views=info.views),
            source_sha256=request.source_sha256,
            datasette_settings=DATASETTE_SETTINGS,
            # builder.csp.gallery_policy: what the content origin sends on this build's answers.
            content_security_policy=policy,
            metadata=metadata,
            # builder.tables.describe_tables: [{"name", "rows", "columns"}], for the gallery page.
            tables=tuple(tables),
            # builder.scan.scan_database: columns that look like personal data, for moderators.
            scan=tuple(scan),
            card=StoredImage(key=extras[0][0], url=extras[0][2]) if extras else None,
            # Every file with its storage key and its path on the content origin (what a self-host
            # copy of the bundle lays out as folders), and its gzip copy if it has one.
            files=tuple(
                ManifestFile(
                    key=key,
                    url=url,
                    size=local.stat().st_size,
                    sha256=digests.get(local) or sha256_file(local),
                    gzip=GzipCopy(key + GZIP_SUFFIX, gzipped[key][1]) if key in gzipped else None,
                )
                for key, local, url in listed
            ),
            first_visit_bytes=total_bytes,
            # builder.sqlite_check: what the publisher should know although the build succeeded.
            warnings=info.warnings,
        )  # fmt: skip
        # The self-host zip of the files just listed, from their local copies: made once here, so
        # the content origin serves it as a stored file. It is no "files" entry: a reader's worker
        # never fetches it, and it never holds itself.
        started = time.monotonic()
        listing = bundle_listing(manifest, request.build_id)
        local_files = {key: local for key, local, _ in listed}
        download = work / DOWNLOAD_NAME
        with download.open("wb") as target:
            write_bundle_zip(listing, lambda key: local_files[key].open("rb"), target, datetime.now(UTC))
        download_bytes = download.stat().st_size
        manifest = replace(manifest, download=DownloadZip(key=download_key(request.build_id), size=download_bytes))
        log(
            f"Self-host zip written in {time.monotonic() - started:.1f} s: {download_bytes:,} bytes "
            f"({len(listing.files)} files and {README_NAME})."
        )
        manifest_file = work / "manifest.json"
        manifest_file.write_text(manifest.to_json())
        # sw.js and index.html go last: once they are in place, readers may start on this build.
        ordered = [*files, *extras, *generated[:-1],
                   *((key + GZIP_SUFFIX, copy, "") for key, (copy, _) in gzipped.items() if copy),
                   (download_key(request.build_id), download, ""),
                   (f"{build_prefix}manifest.json", manifest_file, ""),
                   generated[-1], (f"{build_prefix}index.html", index_html, "/index.html")]  # fmt: skip
        log(
            f"Bundle written: {len(ordered)} files ({len(report.static_files)} static), "
            f"{total_bytes:,} bytes for a first visit "
            f"({gzip_bytes:,} with the {len(gzipped)} gzip copies)."
        )

        on_state("uploading")
        uploaded = 0
        for key, local, _ in ordered:
            # Shared runtime files and wheels are immutable: store each once.
            if key.startswith(build_prefix) or not storage.exists(key):
                storage.put_file(key, local)
                uploaded += 1
        log(f"Stored {uploaded} files ({len(ordered) - uploaded} shared files were already stored).")
    return BuildResult(manifest=manifest, bundle_bytes=total_bytes, download_bytes=download_bytes)
