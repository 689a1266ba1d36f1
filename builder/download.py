"""Self-host download: one build's bundle as a zip laid out as a static site, written once per build.

The zip holds every file of the build's manifest ``files`` at its ``url`` path (``index.html``,
``sw.js``, ``_runtime/…``, ``_wheels/…``, ``_build/<build-id>/…`` and Datasette's static files),
in manifest order, then a ``README.txt`` that says how to serve the folder (``python3 -m
http.server``) and what it holds. Served that way the copy needs nothing from Glasshouse: every
path in a bundle is absolute from the site root. The stored gzip and Brotli copies (``<key>.gz``,
``<key>.br``) are not part of it, nor is the zip itself (it is no ``files`` entry).

``builder.director`` writes it from the bundle's local files once they are all written
(``write_local_zip``), and stores it at ``builds/<build-id>/download.zip`` (``download_key``) with the rest of
the build; the content origin serves that key at ``/_download/<build-id>.zip``
(``gallery.content``). A build stored before builds wrote the zip gets it once, made from the
store by ``store_bundle_zip`` (``worker_shell.tasks.store_download``).

Compressible files (``builder.storage.compressible``: text, wasm, SQLite) are deflated; the rest
(wheels, zips, images, fonts) are stored as they are, since deflating them again gains nothing.
The shared runtime's files, which lead every manifest (Pyodide's wasm and JavaScript, the compiled
standard library), are deflated once per machine: a build's zip starts as a copy of the build
cache's zip of them (``cached_runtime_zip``) and the build appends its other files. Deflating them
took 0.73 s of CPU in every build here (the wasm 0.42 s, the standard library 0.28 s).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from builder.copy_cache import cached_copy
from builder.manifest import InvalidManifest, Manifest, ManifestFile
from builder.storage import Storage, check_key, compressible
from builder.url_map import URL_MAP

#: Name of the README at the root of every download.
README_NAME = "README.txt"
#: Name of the stored zip inside its build's prefix (``download_key``).
DOWNLOAD_NAME = "download.zip"
#: Storage prefixes a bundle file may come from; never ``uploads/`` (private).
BUNDLE_PREFIXES = ("builds/", "runtime/", "wheels/")
_CHUNK = 1024 * 1024
#: Files at least this long (a big database) are deflated at ``BIG_FILE_LEVEL``: on the 217 MB
#: benchmark database, zlib's level 6 took 12.3 s for 70.8 MB, level 1 2.9 s for 80.5 MB, and the
#: zip is written during the build.
BIG_FILE_BYTES = 16 * 1024 * 1024
BIG_FILE_LEVEL = 1
#: Storage prefix of the shared runtime's files, which lead every manifest.
RUNTIME_PREFIX = "runtime/"
#: Folder of the build cache that holds the zips of the runtime's files (``cached_runtime_zip``).
RUNTIME_ZIP_FOLDER = "download-runtime"


def download_key(build_id: str) -> str:
    """Storage key of build ``build_id``'s self-host zip: ``"builds/<build_id>/download.zip"``."""
    return f"builds/{build_id}/{DOWNLOAD_NAME}"


@dataclass(frozen=True)
class BundleFile:
    """One file of the download: ``name`` in the zip (its URL path without the leading ``/``), storage ``key``, ``size`` in bytes."""

    name: str
    key: str
    size: int


@dataclass(frozen=True)
class BundleListing:
    """What a build's download holds: ``files`` in manifest order, ``readme`` text, and ``filename``.

    ``filename`` is ``"<database-name>-<build-id>.zip"`` (``download_filename``), for ``Content-Disposition``.
    """

    build_id: str
    filename: str
    files: tuple[BundleFile, ...]
    readme: str


def download_filename(database_name: str, build_id: str) -> str:
    """``"<database-name>-<build-id>.zip"``: the file name a reader's browser saves the download as.

    ``database_name`` is the manifest's ``database.name``, kept to the characters
    ``gallery.models.database_name_for`` produces (``"data"`` when none are left).
    """
    return f"{re.sub(r'[^a-z0-9_-]+', '-', database_name.lower()).strip('-') or 'data'}-{build_id}.zip"


def bundle_listing(manifest: Manifest, build_id: str) -> BundleListing:
    """List what the download of ``manifest`` (``builds/<build_id>/manifest.json``) holds.

    Raises ``InvalidManifest`` when the manifest lists a key outside the bundle
    (``BUNDLE_PREFIXES``: never an upload), an unsafe path, the zip itself, or one name twice.
    """
    where = f"builds/{build_id}/manifest.json"
    files: list[BundleFile] = []
    seen = {README_NAME}
    for entry in manifest.files:
        bundle_file = _bundle_file(entry, where)
        if bundle_file.key == download_key(build_id):
            raise InvalidManifest(f"{where} lists the download itself")
        if bundle_file.name in seen:
            raise InvalidManifest(f"{where} lists {bundle_file.name} twice")
        seen.add(bundle_file.name)
        files.append(bundle_file)
    return BundleListing(
        build_id=build_id,
        filename=download_filename(manifest.database.name, build_id),
        files=tuple(files),
        readme=readme_text(manifest, files),
    )


def _bundle_file(entry: ManifestFile, where: str) -> BundleFile:
    try:
        check_key(entry.key)
        name = check_key(entry.url.removeprefix("/"))
    except ValueError as exc:
        raise InvalidManifest(f"{where} lists an unsafe path: {exc}") from exc
    if not entry.url.startswith("/") or not entry.key.startswith(BUNDLE_PREFIXES) or entry.size < 0:
        raise InvalidManifest(f"{where} lists {entry.key!r} at {entry.url!r}, outside the bundle")
    return BundleFile(name=name, key=entry.key, size=entry.size)


def readme_text(manifest: Manifest, files: list[BundleFile]) -> str:
    """The download's ``README.txt``: how to serve it, what it contains, licence and source if the metadata has them."""
    metadata = manifest.metadata
    title = str(metadata.get("title") or manifest.database.name)
    build_id = manifest.build_id
    pyodide = manifest.pyodide_version
    database = next((f for f in files if f.key == manifest.database.key), None)
    # Names in the zip are URL paths without their leading "/".
    store = URL_MAP.store
    runtime, wheel_folder, build = (prefix.removeprefix("/") for prefix in (store.runtime, store.wheels, store.build))
    wheels = sorted(PurePosixPath(f.name).name for f in files if f.name.startswith(wheel_folder))
    plugins = ", ".join(manifest.plugins) or "none"
    lines = [
        f"{title}",
        f"A self-contained copy of a Glasshouse gallery (build {build_id}).",
        "",
        "This folder is a static web site. Datasette runs inside the reader's browser",
        "(in Pyodide, Python compiled to WebAssembly); the server only hands out files.",
        "",
        "To open it:",
        "  1. Unzip this file.",
        "  2. In the unzipped folder, run:  python3 -m http.server 8000",
        "  3. Open http://localhost:8000/ in a browser.",
        "",
        "Open it through http://localhost (not as a file:// page): the Service Worker that",
        "answers every page needs an http(s) address, and browsers treat localhost as secure.",
        "Any static file server works the same way; serve the folder at the root of its site.",
        "",
        "What it contains:",
        _listed("index.html", "the loading page: starts the Service Worker, shows progress"),
        _listed(URL_MAP.server.service_worker.removeprefix("/"), "the Service Worker that answers every page with Datasette"),
        _listed(f"{runtime}pyodide-{pyodide}/", f"Pyodide {pyodide}"),
        _listed(wheel_folder, f"Datasette {manifest.datasette_version} with its dependencies; plugins: {plugins}"),
        _listed(f"{build}{build_id}/pyodide-lock.json", "the lock file: every package with its sha256"),
    ]
    if database is not None:
        lines.append(_listed(database.name, f"the database ({database.size:,} bytes)"))
    lines += ["", "Wheels:", *(f"  {name}" for name in wheels)]
    notes = [
        f"  {label}: {' '.join(str(v) for v in values if v)}"
        for label, values in (
            ("Licence", (metadata.get("license"), _bracket(metadata.get("license_url")))),
            ("Source", (metadata.get("source"), _bracket(metadata.get("source_url")))),
            ("About", (metadata.get("about"), _bracket(metadata.get("about_url")))),
        )
        if any(values)
    ]
    if notes:
        lines += ["", "Licence and source, as the publisher gave them:", *notes]
    return "\n".join(lines) + "\n"


def _listed(name: str, what: str) -> str:
    """One line of the README's list: ``name`` in a column 25 characters wide (wider names push ``what`` on)."""
    return f"  {name:<25}  {what}"


def _bracket(url: object) -> str:
    return f"<{url}>" if url else ""


def write_bundle_zip(
    listing: BundleListing,
    open_file: Callable[[str], BinaryIO],
    target: BinaryIO,
    date_time: datetime,
    *,
    append: bool = False,
) -> None:
    """Write the zip of ``listing`` to ``target`` (a seekable file opened for writing).

    ``open_file(key)`` opens a bundle file's bytes (a local file at build time, ``Storage.open``
    for an older build); each is copied in 1 MiB pieces, never held whole (a database may be
    1 GB). Every entry is dated ``date_time`` (its local fields; zip has no time zone).
    Compressible files are deflated (zlib's default level, 6; ``BIG_FILE_LEVEL`` from
    ``BIG_FILE_BYTES``), the rest stored. With ``append``, ``target`` (opened for reading and
    writing) already holds a zip, whose entries come first. Raises
    ``InvalidManifest`` when a file's size differs from the listing's (the copy would not match
    its lock), and whatever ``open_file`` raises (``OSError``, ``builder.storage.MissingKey``,
    ``StorageError``); ``target`` then holds no usable zip.
    """
    stamp = date_time.timetuple()[:6]
    with zipfile.ZipFile(target, mode="a" if append else "w") as archive:
        _add_files(archive, listing.files, open_file, date_time, listing.build_id)
        readme = zipfile.ZipInfo(README_NAME, date_time=stamp)
        readme.compress_type = zipfile.ZIP_DEFLATED
        readme.external_attr = 0o644 << 16
        archive.writestr(readme, listing.readme)


def _add_files(
    archive: zipfile.ZipFile,
    files: Sequence[BundleFile],
    open_file: Callable[[str], BinaryIO],
    date_time: datetime,
    build_id: str,
) -> None:
    """Add ``files`` to ``archive`` as ``write_bundle_zip`` says, each dated ``date_time``."""
    stamp = date_time.timetuple()[:6]
    for bundle_file in files:
        info = zipfile.ZipInfo(bundle_file.name, date_time=stamp)
        info.file_size = bundle_file.size  # lets zipfile pick ZIP64 before it writes the header
        info.compress_type = zipfile.ZIP_DEFLATED if compressible(bundle_file.key) else zipfile.ZIP_STORED
        if bundle_file.size >= BIG_FILE_BYTES:
            # ZipInfo's own level, which open(info, "w") honours: "_compresslevel" in 3.12, a
            # property for "compress_level" in 3.13; typeshed declares neither.
            setattr(info, "_compresslevel", BIG_FILE_LEVEL)  # noqa: B010
        info.external_attr = 0o644 << 16
        written = 0
        with open_file(bundle_file.key) as source, archive.open(info, mode="w") as entry:
            while chunk := source.read(_CHUNK):
                entry.write(chunk)
                written += len(chunk)
        if written != bundle_file.size:
            raise InvalidManifest(
                f"{bundle_file.key} has {written} bytes, builds/{build_id}/manifest.json says {bundle_file.size}"
            )


def runtime_head(listing: BundleListing) -> tuple[BundleFile, ...]:
    """The files that lead ``listing`` and come from the shared runtime (``RUNTIME_PREFIX`` keys):
    the same bytes in every build of that runtime, in manifest order."""
    head: list[BundleFile] = []
    for bundle_file in listing.files:
        if not bundle_file.key.startswith(RUNTIME_PREFIX):
            break
        head.append(bundle_file)
    return tuple(head)


def cached_runtime_zip(
    head: Sequence[BundleFile],
    sha256s: Mapping[str, str],
    open_file: Callable[[str], BinaryIO],
    cache_dir: Path,
    date_time: datetime,
    build_id: str,
) -> Path:
    """The build cache's zip of the ``head`` files alone (entries as ``write_bundle_zip`` writes them, no README).

    Kept at ``cache_dir/RUNTIME_ZIP_FOLDER/<sha256>.zip``, named by the hex sha256 of the files'
    names, keys, sizes and ``sha256s`` (hex sha256 by storage key, from the manifest). Made once per
    machine with ``builder.copy_cache.cached_copy`` (under its lock; other processes wait for it),
    its entries dated ``date_time``, the time of the build that made it; a zip that no longer opens,
    lists other entries or fails its CRC checks is made again. Raises ``OSError`` and
    ``InvalidManifest`` (a file's size differs from ``head``'s, which build ``build_id``'s manifest gave).
    """
    facts = [[f.name, f.key, f.size, sha256s[f.key]] for f in head]
    digest = hashlib.sha256(json.dumps(facts).encode()).hexdigest()
    expected = [(f.name, f.size) for f in head]

    def make(scratch: Path, stop: threading.Event | None) -> None:
        with scratch.open("wb") as out, zipfile.ZipFile(out, mode="w") as archive:
            _add_files(archive, head, open_file, date_time, build_id)

    def decodes(path: Path) -> bool:
        try:
            with zipfile.ZipFile(path) as archive:
                listed = [(info.filename, info.file_size) for info in archive.infolist()]
                return listed == expected and archive.testzip() is None
        except (OSError, zipfile.BadZipFile, EOFError, zlib.error):
            return False

    return cached_copy(cache_dir / RUNTIME_ZIP_FOLDER / f"{digest}.zip", make, decodes)


def write_local_zip(
    manifest: Manifest, local_files: Mapping[str, Path], target: Path, date_time: datetime, cache_dir: Path | None = None
) -> int:
    """Write the zip of ``manifest``'s files to ``target`` from their local copies; return how many it holds.

    At build time (``builder.director``), before anything is stored: ``local_files`` maps each
    listed storage key to its local file. With ``cache_dir`` (the build cache), the runtime's
    files that lead the manifest come from ``cached_runtime_zip`` (dated when that zip was made)
    and the rest are appended to a copy of it: the same names, order and bytes. The README comes on
    top of the count. Raises ``InvalidManifest`` (``bundle_listing``, ``write_bundle_zip``) and ``OSError``.
    """
    listing = bundle_listing(manifest, manifest.build_id)
    count = len(listing.files)

    def open_file(key: str) -> BinaryIO:
        return local_files[key].open("rb")

    head = runtime_head(listing) if cache_dir is not None else ()
    if cache_dir is not None and head:
        sha256s = {entry.key: entry.sha256 for entry in manifest.files}
        shutil.copyfile(cached_runtime_zip(head, sha256s, open_file, cache_dir, date_time, manifest.build_id), target)
        with target.open("r+b") as zip_so_far:
            rest = replace(listing, files=listing.files[len(head) :])
            write_bundle_zip(rest, open_file, zip_so_far, date_time, append=True)
        return count
    with target.open("wb") as out:
        write_bundle_zip(listing, open_file, out, date_time)
    return count


def store_bundle_zip(storage: Storage, build_id: str, date_time: datetime, temp_dir: Path | None = None) -> int:
    """Make the zip of a stored build from the store and store it at ``download_key``; return its size in bytes.

    For builds stored before builds wrote the zip themselves (``write_local_zip``). Reads
    ``builds/<build_id>/manifest.json`` and every file it lists from ``storage``, writes the
    zip under ``temp_dir`` (default: the system's temporary folder; removed before returning)
    and stores it. Raises ``builder.storage.MissingKey`` when the manifest or a listed file is
    absent, ``InvalidManifest`` when the manifest is malformed or disagrees with the store, and
    ``StorageError`` when the store fails; nothing is stored then.
    """
    where = f"builds/{build_id}/manifest.json"
    with storage.open(where) as fh:
        manifest = Manifest.from_json(fh.read(), where)
    listing = bundle_listing(manifest, build_id)
    with tempfile.TemporaryDirectory(prefix="glasshouse-download-", dir=temp_dir) as tmp:
        path = Path(tmp) / DOWNLOAD_NAME
        with path.open("wb") as target:
            write_bundle_zip(listing, storage.open, target, date_time)
        storage.put_file(download_key(build_id), path)
        return path.stat().st_size
