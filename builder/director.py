"""The build director: one build of a gallery's bundle, phase by phase.

``BuildDirector(request, storage=..., on_state=..., log=...).run()`` directs the build of one
``BuildRequest`` (the style of Read the Docs' ``doc_builder/director.py``: one class, one method
per phase, plain values in, a ``BuildResult`` out, no Django and no Celery):

``validate``
    copy the upload from storage (``source_key``), check it in a child process
    (``builder.sqlite_check``) and write the canonical copy, the only form of the upload that
    is published;
``resolve``
    check the plugins against the catalog and fetch the pinned wheels (``builder.wheels``);
``stage``
    describe the tables, scan the data, draw the share card and the app icons, write the build's
    lock file and runtime module, compile the standard library;
``check``
    boot the bundle in Node before anything is published (``builder.compat``);
``write``
    lay out every file (``builder.bundle``) with the web app manifest (``builder.web_app_manifest``),
    make the gzip and Brotli copies (``builder.gzip_copies``, ``builder.brotli_copies``), the
    manifest (``builder.manifest``) and the self-host zip (``builder.download``);
``upload``
    store the files, ``sw.js`` and ``index.html`` last (``builder.storage``).

``on_state`` hears the ``BuildPhase`` each phase starts (validate, resolve, stage and upload:
check and write are part of ``BUNDLING``). Every fault the publisher should read about becomes a
``BuildError`` whose ``reason`` says what to do (this module holds those sentences). A fault a
later try may not meet (``builder.wheels.WheelError``) and the caller's own (a time limit) pass
through; so does anything unforeseen, which the caller records as a crash (``CRASH_REASON``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from builder import check_snapshots
from builder.brotli_copies import (
    DATABASE_QUALITY,
    LAZY_DATABASE_QUALITY,
    BackgroundBrotli,
    BrotliFile,
    brotli_copies,
    file_maker,
    start_shared_copies,
)
from builder.bundle import (
    DATASETTE_SETTINGS,
    BundleEntry,
    BundleLayout,
    build_files,
    missing_runtime_files,
    precache_list,
    runtime_config,
    runtime_files,
    static_files,
    write_generated_files,
    write_web_app_manifest,
)
from builder.card import render_card, render_icon
from builder.catalog import UnknownPlugin, check_plugins, load_lock
from builder.compat import CompatError, CompatOutOfMemory, CompatReport, CompatRequest, check_bundle
from builder.csp import gallery_policy
from builder.download import DOWNLOAD_NAME, README_NAME, download_key, write_local_zip
from builder.gzip_copies import DATABASE_GZIP_LEVEL, LAZY_DATABASE_GZIP_LEVEL, BackgroundGzip, GzipFile, gzip_copies
from builder.lazy_database import BLOCK_BYTES, block_hashes_name, is_lazy, write_block_hashes
from builder.manifest import BrotliCopy, DownloadZip, GzipCopy, Manifest, ManifestDatabase, ManifestFile, StoredImage
from builder.pyodide import PYODIDE_VERSION
from builder.runtime import RUNTIME_MODULE
from builder.scan import scan_database
from builder.sqlite_check import CheckLimits, DatabaseInfo, InvalidDatabase, check_database
from builder.stdlib import compiled_stdlib
from builder.storage import BROTLI_SUFFIX, GZIP_SUFFIX, MissingKey, Storage, StorageError, copy_to_file
from builder.tables import describe_tables, table_counts
from builder.tabular import InvalidTabularFile, convert_file
from builder.web_app_manifest import ICON_SIZES
from builder.wheels import TamperedWheel, closure, fetch_wheels, sha256_file, write_pyodide_lock

#: The reason of a build that failed for a fault nobody foresaw (the log has the traceback).
CRASH_REASON = "The build crashed on our side; the log has the details. Nothing was published. Try again later."


class BuildPhase(StrEnum):
    """The phase a build is in, as ``on_state`` hears it; the values are ``gallery.models.BuildState``'s."""

    VALIDATING = "validating"
    RESOLVING = "resolving"
    BUNDLING = "bundling"
    UPLOADING = "uploading"


class BuildError(Exception):
    """The build failed and nothing was published; ``reason`` tells the publisher why and what to do.

    ``log_line`` is text for the build log only (``None``: nothing more to log). Not worth
    retrying: the same request fails the same way, or the fault outlasted the store's retries.
    """

    def __init__(self, reason: str, log_line: str | None = None) -> None:
        super().__init__(reason)
        self.log_line = log_line

    @property
    def reason(self) -> str:
        """The sentence for the publisher (``args[0]``)."""
        return str(self.args[0])


class BuildCancelled(BuildError):
    """``on_state`` was told the build was cancelled meanwhile: stop before the next phase."""

    def __init__(self) -> None:
        super().__init__("The build was cancelled.")


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    """Everything one build needs, as plain values.

    The upload: ``database_path`` is its local copy (with ``source_key``, the director first
    copies the stored upload at that storage key there, as the worker does); ``database_name`` the
    slug Datasette shows in URLs (``[a-z0-9_-]+``); ``source_sha256`` its hash, for the manifest.
    The gallery: ``title``, ``description``, ``plugins`` (catalog names), ``datasette_version``
    and ``metadata`` (``builder.metadata.parse_metadata``; its keys win over title and description).
    The worker: ``runtime_dir`` holds the Pyodide npm package's files for ``pyodide_version``;
    ``cache_dir`` the wheel cache; ``temp_dir`` is where every temporary file goes (default: the
    system's temporary folder); ``node_max_old_space_mb`` caps the Node check's heap (MB;
    ``None``: Node's default); ``check_limits`` bound the database check
    (``builder.sqlite_check.CheckLimits``); ``storage_retry_budget`` is how many seconds the store
    retries a fault (``builder.storage.S3Storage``), for the reason of a build it gave up on.
    """

    build_id: str
    database_path: Path
    database_name: str
    title: str
    description: str
    plugins: tuple[str, ...]
    datasette_version: str
    source_sha256: str
    runtime_dir: Path
    cache_dir: Path
    pyodide_version: str = PYODIDE_VERSION
    metadata: dict = field(default_factory=dict)
    check_limits: CheckLimits = field(default_factory=CheckLimits)
    source_key: str | None = None
    #: A CSV, TSV, JSON or Excel upload (``builder.tabular``): its format (``"sqlite"``: a database),
    #: the table a one-table format becomes, full-text search on it, and the conversion's limits
    #: (``max_bytes``: the converted database's cap, which then bounds its check too).
    source_format: str = "sqlite"
    table_name: str = ""
    full_text_search: bool = False
    search_columns: tuple[str, ...] = ()
    conversion_limits: CheckLimits = field(default_factory=CheckLimits)
    temp_dir: Path | None = None
    #: Databases at least this long (bytes) are read lazily in readers' browsers (``builder.lazy_database``); ``None``: never.
    lazy_database_min_bytes: int | None = None
    node_max_old_space_mb: int | None = None
    storage_retry_budget: float = 60.0


@dataclass(frozen=True)
class BuildResult:
    """``manifest``: what the build's ``manifest.json`` says (``manifest.warnings``: sentences the
    publisher should read although the build succeeded); ``bundle_bytes``: what a reader's browser
    may download, the first visit's files (``manifest.first_visit_bytes``) plus a lazy database,
    whose blocks come later (publishers' storage quotas count it); ``download_bytes``: the size of
    the self-host zip."""

    manifest: Manifest
    bundle_bytes: int
    download_bytes: int


StateCallback = Callable[[BuildPhase], None]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Resolved:
    """What ``resolve`` found: the plugins (catalog names, sorted) and the cached wheels to bundle."""

    plugins: tuple[str, ...]
    wheels: tuple[Path, ...]


@dataclass(frozen=True)
class Staged:
    """What ``stage`` wrote and found, for the check and the bundle.

    ``database``: the canonical copy; ``info``: the database check's findings; ``tables`` and
    ``scan``: ``builder.tables.describe_tables`` and ``builder.scan.scan_database``; ``card``: the
    share card (``None`` if it could not be drawn); ``icons``: the app icons by size in px (empty
    if they could not be drawn); ``counts``: every table's row count (``builder.tables.table_counts``);
    ``database_sha256``: the canonical copy's hex digest; ``lock_file``, ``runtime_module``: the build's own files;
    ``metadata``: Datasette's; ``stdlib``: the compiled standard library, or ``None``.
    """

    database: Path
    info: DatabaseInfo
    tables: list[dict[str, object]]
    scan: list[dict[str, object]]
    card: Path | None
    lock_file: Path
    runtime_module: Path
    metadata: dict
    stdlib: Path | None
    database_sha256: str
    icons: dict[int, Path] = field(default_factory=dict)
    counts: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """What ``write`` laid out: the ``manifest`` (with the zip), the zip's size in bytes, every file
    to store in order, and the size of a lazy database (bytes; 0 when it is downloaded first)."""

    manifest: Manifest
    download_bytes: int
    ordered: list[BundleEntry]
    lazy_database_bytes: int = 0


class BuildDirector:
    """Builds one ``BuildRequest`` into ``storage``: ``run`` calls the phases in order.

    ``on_state`` hears each ``BuildPhase`` as it starts (it may raise ``BuildCancelled`` to stop
    the build); ``log`` gets the build log's lines. The phases share a work folder under
    ``request.temp_dir`` and background gzip and Brotli threads, alive only while ``run`` runs.
    """

    def __init__(self, request: BuildRequest, *, storage: Storage, on_state: StateCallback, log: Log) -> None:
        self.request = request
        self.storage = storage
        self.on_state = on_state
        self.log = log
        self.layout = BundleLayout(request.build_id, request.pyodide_version)
        # The build in progress's work folder and compression threads: set by run(), for the phases.
        self.work = Path()
        self.background = BackgroundGzip()
        self.brotli = BackgroundBrotli()

    def run(self) -> BuildResult:
        """Validate, resolve, stage, check, write and upload the bundle; return what was stored.

        Raises ``BuildError`` with the publisher's reason when the build cannot succeed as
        submitted (bad database, unknown plugin, a bundle that does not start in Node, a cached
        wheel that no longer matches the lock, an upload gone from storage, a store that stayed
        down for its whole retry budget), ``builder.wheels.WheelError`` for a package-index fault
        worth retrying, ``FileNotFoundError`` if ``runtime_dir`` lacks the Pyodide files (run
        ``make setup``) or Node.js is not on PATH, ``builder.compat.SandboxUnavailable`` for a Node
        too old to sandbox the check, and ``builder.tables.DescribeError`` or
        ``builder.scan.ScanError`` if the checked copy cannot be read after all. Nothing is
        stored before ``upload``; every temporary file is removed before returning.
        """
        try:
            # The compression threads stop before the folder is removed: nothing writes into it afterwards.
            with (
                tempfile.TemporaryDirectory(prefix="glasshouse-bundle-", dir=self.request.temp_dir) as tmp,
                BackgroundGzip() as self.background,
                BackgroundBrotli() as self.brotli,
            ):
                self.work = Path(tmp)
                (self.work / "gzip").mkdir()
                (self.work / "brotli").mkdir()
                self.start_runtime_copies()
                database, info = self.validate()
                resolved = self.resolve()
                staged = self.stage(database, info, resolved)
                report = self.check(staged, resolved)
                written = self.write(staged, resolved, report)
                self.upload(written)
        except StorageError as exc:
            raise BuildError(
                f"Storage was unavailable during the build (retried for up to {self.request.storage_retry_budget:g} "
                "seconds). Nothing was published; start the build again later (Rebuild).",
                log_line=f"Storage fault: {exc}",
            ) from exc
        return BuildResult(
            written.manifest, written.manifest.first_visit_bytes + written.lazy_database_bytes, written.download_bytes
        )

    def start_runtime_copies(self) -> None:
        """Start the shared runtime files' Brotli copies in the background, unless the store or the cache has them.

        Quality 11 on Pyodide's wasm takes about a minute of CPU, once per machine and runtime
        (``builder.brotli_copies.cached_brotli_copy``): started first, it runs while the
        database is checked and the bundle booted. A missing runtime file is left to ``resolve``,
        which says what to do.
        """
        present = [entry for entry in runtime_files(self.layout, self.request.runtime_dir, None) if entry.path.is_file()]
        start_shared_copies(present, self.storage, self.brotli, self.request.cache_dir)

    def validate(self) -> tuple[Path, DatabaseInfo]:
        """Check the upload and write its canonical copy; return ``(the copy, what the check found)``.

        Runs ``builder.sqlite_check.check_database`` within ``request.check_limits`` (a child
        process with memory, CPU and wall-clock limits). Its warnings go to the log (and to the
        manifest). The copy's gzip and Brotli copies start in the background.
        """
        request = self.request
        self.on_state(BuildPhase.VALIDATING)
        if request.source_key:
            try:
                copy_to_file(self.storage, request.source_key, request.database_path)
            except MissingKey as exc:
                raise BuildError("The uploaded file is no longer in storage. Upload the database again.") from exc
        copy = self.work / f"{request.database_name}.db"
        database, limits = request.database_path, request.check_limits
        notes: tuple[str, ...] = ()
        if request.source_format != "sqlite":
            database, notes = self.convert()
            limits = replace(limits, max_bytes=request.conversion_limits.max_bytes)
        # The raw upload is only ever read by the checker's child process; what is published is
        # the copy it writes with the same hardened settings (builder.sqlite_check).
        try:
            info = check_database(database, copy_to=copy, limits=limits, temp_dir=self.work, log=self.log)
        except InvalidDatabase as exc:
            raise BuildError(exc.args[0]) from exc
        info = replace(info, warnings=(*notes, *info.warnings))
        self.log(f"Database is valid SQLite: {len(info.tables)} tables, {len(info.views)} views, {info.size_bytes:,} bytes.")
        for warning in info.warnings:
            self.log(f"Warning: {warning}")
        self.log(f"Wrote the canonical database copy (rollback journal): {copy.stat().st_size:,} bytes.")
        # The copy is final: gzip it while the rest of the build runs (for a big database, the
        # longest step after the check).
        lazy = is_lazy(copy.stat().st_size, request.lazy_database_min_bytes)
        level = LAZY_DATABASE_GZIP_LEVEL if lazy else DATABASE_GZIP_LEVEL
        self.background.start(copy, self.work / "gzip" / "database.gz", level)
        quality = LAZY_DATABASE_QUALITY if lazy else DATABASE_QUALITY
        self.brotli.start(copy, file_maker(copy, self.work / "brotli" / "database.br", quality))
        return copy, info

    def convert(self) -> tuple[Path, tuple[str, ...]]:
        """Turn a tabular upload into a SQLite database (``builder.tabular.convert_file``, in a child
        process with ``request.conversion_limits``); return ``(the database, warnings for the build page)``.

        The log says what was made: the encoding read, each table with its rows and typed columns,
        full-text search, and the rows left out and why. Raises ``BuildError`` with the reason (the
        line number where the text does not parse) when the file cannot become tables.
        """
        request = self.request
        converted = self.work / "converted.db"
        try:
            conversion = convert_file(
                request.database_path, request.source_format, output=converted, table_name=request.table_name,
                full_text_search=request.full_text_search, search_columns=request.search_columns,
                limits=request.conversion_limits, temp_dir=self.work,
            )  # fmt: skip
        except InvalidTabularFile as exc:
            raise BuildError(exc.args[0]) from exc
        for line in conversion.log_lines(f"the {request.source_format.upper()} upload"):
            self.log(line)
        return converted, tuple(conversion.warnings())

    def resolve(self) -> Resolved:
        """Check the plugins against the catalog and make sure every pinned wheel is in the cache."""
        request = self.request
        self.on_state(BuildPhase.RESOLVING)
        try:
            plugins = check_plugins(list(request.plugins), request.datasette_version)
            lock = load_lock(request.datasette_version)
        except (UnknownPlugin, ValueError) as exc:
            raise BuildError(exc.args[0]) from exc
        wheels = closure(lock, ["datasette", *plugins])
        self.log(
            f"Datasette {request.datasette_version} with {', '.join(plugins) or 'no plugins'}: {len(wheels)} pinned wheels."
        )
        try:
            paths = fetch_wheels(wheels, request.cache_dir, self.log, temp_dir=request.temp_dir)
        except TamperedWheel as exc:
            self.log(f"Wheel integrity check failed: {exc.args[0]}")
            raise BuildError(
                "A pinned package file on our build server failed its integrity check, so the build stopped "
                "and nothing was published. This is our fault, not your database's: try again later, and "
                "tell us if it keeps failing."
            ) from exc
        missing = missing_runtime_files(request.runtime_dir)
        if missing:
            raise FileNotFoundError(
                f"Pyodide runtime incomplete in {request.runtime_dir}: missing {missing}; run `make setup`."
            )
        return Resolved(plugins=tuple(plugins), wheels=tuple(paths.values()))

    def stage(self, database: Path, info: DatabaseInfo, resolved: Resolved) -> Staged:
        """Describe and scan the data, draw the share card, write the lock file and the runtime module."""
        request, work = self.request, self.work
        self.on_state(BuildPhase.BUNDLING)
        tables = describe_tables(database)
        counts = table_counts(database)
        database_sha256 = sha256_file(database)  # once: the check's inspect data and the bundle's digests
        self.log(f"Tables: {', '.join(f'{t['name']} ({t['rows']:,} rows)' for t in tables) or 'none'}.")
        scan = scan_database(database)
        flagged = ", ".join(f"{flag['kind']}: {flag['table']}.{flag['column']}" for flag in scan)
        self.log(f"Data scan: {len(scan)} columns flagged ({flagged})." if scan else "Data scan: no columns flagged.")
        # The share card is for pages that link to the gallery; a build without one still works.
        card: Path | None = work / "card.png"
        try:
            render_card(request.title, tables, work / "card.png")
        except (OSError, ValueError) as exc:
            self.log(f"Share card not drawn ({exc}); the gallery page shows none.")
            card = None
        # The app icons, the card in small: without them the gallery is not installable, nothing else.
        icons: dict[int, Path] = {}
        try:
            for size in ICON_SIZES:
                icons[size] = render_icon(request.title, size, work / f"icon-{size}.png")
        except (OSError, ValueError) as exc:
            self.log(f"App icons not drawn ({exc}); readers cannot install this gallery as an app.")
            icons = {}
        lock_file = work / "pyodide-lock.json"
        write_pyodide_lock(request.runtime_dir / "pyodide-lock.json", request.cache_dir, list(resolved.wheels), lock_file)
        runtime_module = work / "glasshouse_runtime.py"
        runtime_module.write_bytes(RUNTIME_MODULE.read_bytes())
        metadata = {"title": request.title, "description": request.description, **request.metadata}
        # Made once per runtime and cached; without it (logged) readers boot from the source zip.
        stdlib = compiled_stdlib(request.runtime_dir, request.cache_dir, request.pyodide_version, log=self.log)
        return Staged(
            database=database, info=info, tables=tables, scan=scan, card=card, lock_file=lock_file,
            runtime_module=runtime_module, metadata=metadata, stdlib=stdlib, icons=icons, counts=counts,
            database_sha256=database_sha256,
        )  # fmt: skip

    def check(self, staged: Staged, resolved: Resolved) -> CompatReport:
        """Boot the bundle once in Node before anything is published (``builder.compat``).

        The same run leaves in the work folder the bytecode of every module Datasette imported
        (``bytecode.zip``), which readers then need not compile, and Datasette's static files
        (``static/``). A failed check's traceback goes to the log.
        """
        request = self.request
        try:
            report = check_bundle(
                CompatRequest(
                    runtime_dir=request.runtime_dir, cache_dir=request.cache_dir, lock_file=staged.lock_file,
                    packages=("datasette", *resolved.plugins), database=staged.database,
                    database_name=request.database_name, settings=DATASETTE_SETTINGS, metadata=staged.metadata,
                    bytecode_out=self.work / "bytecode.zip", static_out=self.work / "static",
                    max_old_space_mb=request.node_max_old_space_mb, temp_dir=self.work, stdlib=staged.stdlib,
                    import_snapshots=request.cache_dir / check_snapshots.FOLDER,
                    inspect={"size": staged.database.stat().st_size, "sha256": staged.database_sha256,
                             "table_counts": staged.counts},
                )
            )  # fmt: skip
        except CompatOutOfMemory as exc:
            self.log(f"Compatibility check failed: {exc.args[0]}\n{exc.log}")
            raise BuildError(
                f"The build {exc.args[0]}. Try a smaller database or fewer plugins; "
                "if it is well within the upload limit, tell us: the limit may be set too low."
            ) from exc
        except CompatError as exc:
            self.log(f"Compatibility check failed: {exc.args[0]}\n{exc.log}")
            raise BuildError(f"The bundle did not start in Pyodide: {exc.args[0]}. The build log has the traceback.") from exc
        self.log(f"Compatibility check: {report.summary()}")
        self.log(f"Compatibility check stages: {report.stages()}")
        return report

    def write(self, staged: Staged, resolved: Resolved, report: CompatReport) -> Written:
        """Lay out every file of the bundle, its gzip and Brotli copies, the manifest and the self-host zip (nothing stored yet)."""
        layout, work = self.layout, self.work
        # What the reader downloads: the shared runtime and wheels, the build's files, the static files.
        block_hashes, blocks = self._block_hashes(staged.database)
        files = [
            *runtime_files(layout, self.request.runtime_dir, staged.stdlib),
            *(layout.wheel(path) for path in resolved.wheels),
            *build_files(layout, lock_file=staged.lock_file, runtime_module=staged.runtime_module,
                         bytecode=work / "bytecode.zip", database=staged.database, block_hashes=block_hashes),
            *static_files(layout, report.static_files, work / "static"),
        ]  # fmt: skip
        # Hash each file once: the precache list wants SRI, the manifest hex (the database may be 1 GB).
        digests = {entry.path: staged.database_sha256 if entry.path == staged.database else sha256_file(entry.path) for entry in files}
        # A lazy database is not downloaded first: readers fetch its blocks as queries need them.
        first = [f for f in files if not (block_hashes and f.path == staged.database)]
        precache = precache_list(first, digests)
        policy = gallery_policy(resolved.plugins)
        # The web app manifest and its icons: what a browser fetches to install the gallery, not precached.
        web_app = write_web_app_manifest(
            layout, work, title=self.request.title, description=self.request.description, icons=staged.icons
        )
        config = runtime_config(
            layout, files=files, precache=precache, packages=("datasette", *resolved.plugins),
            database=staged.database, database_sha256=digests[staged.database], metadata=staged.metadata,
            policy=policy, installable=bool(web_app), lazy_blocks=blocks, table_counts=staged.counts,
        )  # fmt: skip
        generated, index = write_generated_files(layout, work, config, self.request.title, installable=bool(web_app))
        # Files for pages about the gallery, not for the reader's runtime: not precached.
        card = [layout.build_file("card.png", staged.card)] if staged.card else []
        listed = [*files, *card, *web_app, *generated, index]
        # Gzip copies of the compressible files that shrink enough (gallery.content serves them to
        # readers that accept gzip); the precache list keeps the identity bytes' size and integrity.
        copies = gzip_copies(
            listed, self.storage, self.background, work / "gzip", layout.build_prefix, self.request.cache_dir, digests
        )
        # Brotli copies where they beat the gzip ones (for readers that accept br: every browser over HTTPS).
        brotlis = brotli_copies(
            listed, copies, digests, self.storage, self.brotli, work / "brotli", layout.build_prefix, self.request.cache_dir
        )
        manifest = self._manifest(staged, resolved, policy, listed, digests, copies, brotlis, precache)
        manifest, download = self._download(manifest, listed)
        manifest_file = work / "manifest.json"
        manifest_file.write_text(manifest.to_json())
        # sw.js and index.html go last: once they are in place, readers may start on this build.
        ordered = [
            *files, *card, *web_app, *generated[:-1],
            *(BundleEntry(key + GZIP_SUFFIX, copy.path, "") for key, copy in copies.items() if copy.path),
            *(BundleEntry(key + BROTLI_SUFFIX, brotli.path, "") for key, brotli in brotlis.items() if brotli.path),
            download, BundleEntry(f"{layout.build_prefix}manifest.json", manifest_file, ""), generated[-1], index,
        ]  # fmt: skip
        gzip_bytes = sum(copies[f.key].size if f.key in copies else f.path.stat().st_size for f in first)
        brotli_bytes = sum(
            brotlis[f.key].size if f.key in brotlis else copies[f.key].size if f.key in copies else f.path.stat().st_size
            for f in first
        )
        self.log(
            f"Bundle written: {len(ordered)} files ({len(report.static_files)} static), "
            f"{manifest.first_visit_bytes:,} bytes for a first visit "
            f"({gzip_bytes:,} with the {len(copies)} gzip copies, {brotli_bytes:,} with the {len(brotlis)} Brotli copies)."
        )
        lazy_bytes = staged.database.stat().st_size if block_hashes else 0
        return Written(manifest, download.path.stat().st_size, ordered, lazy_bytes)

    def _block_hashes(self, database: Path) -> tuple[Path | None, int | None]:
        """For a lazy database (``builder.lazy_database.is_lazy``), its block hash list and block
        count, written into the work folder and logged; ``(None, None)`` for one read whole."""
        size, threshold = database.stat().st_size, self.request.lazy_database_min_bytes
        if not is_lazy(size, threshold):
            return None, None
        out = self.work / block_hashes_name(database)
        blocks = write_block_hashes(database, out)
        self.log(
            f"The database ({size:,} bytes) is at least {threshold:,} bytes: readers' browsers that can "
            f"(those with JSPI: Chromium 137 and later, Firefox ESR 153) read it in {blocks:,} blocks of {BLOCK_BYTES // 1024} KiB as pages need them, "
            "each checked against its sha256; other browsers download it whole."
        )
        return out, blocks

    def upload(self, written: Written) -> None:
        """Store ``written``'s files in order; shared runtime files and wheels only if not stored yet (immutable)."""
        self.on_state(BuildPhase.UPLOADING)
        uploaded = 0
        for entry in written.ordered:
            if entry.key.startswith(self.layout.build_prefix) or not self.storage.exists(entry.key):
                self.storage.put_file(entry.key, entry.path)
                uploaded += 1
        self.log(f"Stored {uploaded} files ({len(written.ordered) - uploaded} shared files were already stored).")

    def _manifest(
        self,
        staged: Staged,
        resolved: Resolved,
        policy: str,
        listed: list[BundleEntry],
        digests: dict[Path, str],
        copies: dict[str, GzipFile],
        brotlis: dict[str, BrotliFile],
        precache: list[dict[str, Any]],
    ) -> Manifest:
        """The build's manifest, without its self-host zip yet (``builder.manifest``)."""
        request, layout = self.request, self.layout
        return Manifest(
            build_id=request.build_id,
            pyodide_version=request.pyodide_version,
            datasette_version=request.datasette_version,
            plugins=resolved.plugins,
            database=ManifestDatabase(name=request.database_name, key=f"{layout.build_prefix}data/{staged.database.name}",
                                      tables=staged.info.tables, views=staged.info.views),
            source_sha256=request.source_sha256,
            datasette_settings=DATASETTE_SETTINGS,
            content_security_policy=policy,
            metadata=staged.metadata,
            tables=tuple(staged.tables),
            scan=tuple(staged.scan),
            card=StoredImage(key=f"{layout.build_prefix}card.png", url=f"{layout.build_url}card.png")
            if staged.card else None,
            files=tuple(
                ManifestFile(
                    key=entry.key, url=entry.url, size=entry.path.stat().st_size,
                    sha256=digests.get(entry.path) or sha256_file(entry.path),
                    gzip=GzipCopy(entry.key + GZIP_SUFFIX, copies[entry.key].size) if entry.key in copies else None,
                    brotli=BrotliCopy(entry.key + BROTLI_SUFFIX, brotlis[entry.key].size)
                    if entry.key in brotlis else None,
                )
                for entry in listed
            ),
            first_visit_bytes=sum(item["size"] for item in precache),
            warnings=staged.info.warnings,
        )  # fmt: skip

    def _download(self, manifest: Manifest, listed: list[BundleEntry]) -> tuple[Manifest, BundleEntry]:
        """Write the self-host zip of the ``listed`` files from their local copies; return the manifest with it.

        Made once here, so the content origin serves it as a stored file. It is no ``files``
        entry: a reader's worker never fetches it, and it never holds itself.
        """
        started = time.monotonic()
        target = self.work / DOWNLOAD_NAME
        count = write_local_zip(
            manifest, {entry.key: entry.path for entry in listed}, target, datetime.now(UTC), self.request.cache_dir
        )
        size = target.stat().st_size
        self.log(
            f"Self-host zip written in {time.monotonic() - started:.1f} s: {size:,} bytes "
            f"({count} files and {README_NAME})."
        )
        key = download_key(self.request.build_id)
        return replace(manifest, download=DownloadZip(key=key, size=size)), BundleEntry(key, target, "")
