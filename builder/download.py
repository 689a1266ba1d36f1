"""Self-host download: one build's bundle as a zip laid out as a static site.

``<gallery origin>/_download/<build-id>.zip`` (see ``gallery.content``) streams the
bundle that ``builds/<build-id>/manifest.json`` lists: every file of its ``files``
at its ``url`` path (``index.html``, ``sw.js``, ``_runtime/…``, ``_wheels/…``,
``_build/<build-id>/…`` and any static assets), plus a ``README.txt`` that says how
to serve the folder (``python3 -m http.server``) and what it holds. Served that way
the copy needs nothing from Glasshouse: every path in a bundle is absolute from
the site root.

The zip is written by the standard library's ``zipfile`` into a write-only pipe
and handed out chunk by chunk, so it is never held whole in memory (a database may
be 1 GB): entries carry data descriptors, and each entry's size is declared up
front from the store so that ZIP64 is used when it is needed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from builder.storage import Storage, check_key, content_type_for

#: Name of the README at the root of every download.
README_NAME = "README.txt"
#: Storage prefixes a bundle file may come from; never ``uploads/`` (private).
BUNDLE_PREFIXES = ("builds/", "runtime/", "wheels/")
#: Suffixes that are compressed already: stored as they are instead of deflated again.
_STORED_SUFFIXES = frozenset({".whl", ".zip"})
_CHUNK = 256 * 1024
#: Content type of the download, from the same fixed map as every bundle file.
ZIP_CONTENT_TYPE = content_type_for("download.zip")


class InvalidManifest(ValueError):
    """``manifest.json`` of a build cannot describe a download; ``args[0]`` says what is wrong."""


@dataclass(frozen=True)
class BundleFile:
    """One file of the download: ``name`` in the zip (its URL path without the leading ``/``), storage ``key``, ``size`` in bytes."""

    name: str
    key: str
    size: int


@dataclass(frozen=True)
class BundleListing:
    """What a build's download holds: ``files`` in manifest order, ``readme`` text, and the zip's file name."""

    build_id: str
    database_name: str
    files: tuple[BundleFile, ...]
    readme: str

    @property
    def filename(self) -> str:
        """``"<database-name>-<build-id>.zip"``, for ``Content-Disposition``."""
        return f"{self.database_name}-{self.build_id}.zip"


def load_bundle_listing(storage: Storage, build_id: str) -> BundleListing:
    """Read ``builds/<build_id>/manifest.json`` and check every file it lists against the store.

    Sizes come from the store (a file whose size differs from the manifest's is
    refused: the copy would not match its lock). Raises ``builder.storage.MissingKey``
    when the manifest or a listed file is absent, ``InvalidManifest`` when the
    manifest is malformed, names a key outside the bundle or disagrees with the
    store, and ``StorageError`` when the store fails. Nothing has been sent when
    any of these is raised.
    """
    manifest_key = f"builds/{build_id}/manifest.json"
    with storage.open(manifest_key) as fh:
        raw = fh.read()
    try:
        manifest = json.loads(raw)
        entries = manifest["files"]
        # Only for the file name: keep it to the characters ``database_name_for`` produces.
        database_name = re.sub(r"[^a-z0-9_-]+", "-", str(manifest["database"]["name"]).lower()).strip("-") or "data"
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidManifest(f"{manifest_key} is not a bundle manifest: {exc}") from exc
    files: list[BundleFile] = []
    seen: set[str] = set()
    for entry in entries:
        bundle_file = _bundle_file(storage, entry, manifest_key)
        if bundle_file.name in seen or bundle_file.name == README_NAME:
            raise InvalidManifest(f"{manifest_key} lists {bundle_file.name} twice")
        seen.add(bundle_file.name)
        files.append(bundle_file)
    return BundleListing(
        build_id=build_id,
        database_name=database_name,
        files=tuple(files),
        readme=readme_text(manifest, files),
    )


def _bundle_file(storage: Storage, entry: object, manifest_key: str) -> BundleFile:
    try:
        key, url, size = entry["key"], entry["url"], int(entry["size"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidManifest(f"{manifest_key} has a file entry without key, url and size: {entry!r}") from exc
    try:
        check_key(key)
        name = check_key(str(url).removeprefix("/"))
    except ValueError as exc:
        raise InvalidManifest(f"{manifest_key} lists an unsafe path: {exc}") from exc
    if not str(url).startswith("/") or not key.startswith(BUNDLE_PREFIXES):
        raise InvalidManifest(f"{manifest_key} lists {key!r} at {url!r}, outside the bundle")
    stored = storage.size(key)
    if stored != size:
        raise InvalidManifest(f"{key} has {stored} bytes in the store, {manifest_key} says {size}")
    return BundleFile(name=name, key=key, size=size)


def readme_text(manifest: dict, files: list[BundleFile]) -> str:
    """The download's ``README.txt``: how to serve it, what it contains, licence and source if the metadata has them."""
    metadata = manifest.get("metadata") or {}
    title = str(metadata.get("title") or manifest["database"]["name"])
    build_id = manifest.get("build_id", "")
    pyodide = manifest.get("pyodide_version", "?")
    database = next((f for f in files if f.key == manifest["database"].get("key")), None)
    wheels = sorted(PurePosixPath(f.name).name for f in files if f.name.startswith("_wheels/"))
    plugins = ", ".join(manifest.get("plugins") or []) or "none"
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
        "  index.html                 the loading page: starts the Service Worker, shows progress",
        "  sw.js                      the Service Worker that answers every page with Datasette",
        f"  _runtime/pyodide-{pyodide}/  Pyodide {pyodide}",
        f"  _wheels/                   Datasette {manifest.get('datasette_version', '?')} with its dependencies; plugins: {plugins}",
        f"  _build/{build_id}/pyodide-lock.json  the lock file: every package with its sha256",
    ]
    if database is not None:
        lines.append(f"  {database.name}  the database ({database.size:,} bytes)")
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


def _bracket(url: object) -> str:
    return f"<{url}>" if url else ""


def stream_bundle_zip(storage: Storage, listing: BundleListing, date_time: datetime) -> Iterator[bytes]:
    """Yield the zip of ``listing`` in pieces of about 256 KiB, reading each file from ``storage`` as it goes.

    Every entry is dated ``date_time`` (its local fields; zip has no time zone).
    Files with the suffix of a compressed format are stored, the rest deflated.
    A store failure part-way raises ``StorageError``/``MissingKey`` inside the
    response; the client then sees a truncated zip (the status was already sent).
    """
    stamp = date_time.timetuple()[:6]
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w") as archive:
        for bundle_file in listing.files:
            info = zipfile.ZipInfo(bundle_file.name, date_time=stamp)
            info.file_size = bundle_file.size  # lets zipfile pick ZIP64 before it writes the header
            info.compress_type = (
                zipfile.ZIP_STORED
                if PurePosixPath(bundle_file.name).suffix in _STORED_SUFFIXES
                else zipfile.ZIP_DEFLATED
            )
            info.external_attr = 0o644 << 16
            with storage.open(bundle_file.key) as source, archive.open(info, mode="w") as target:
                while chunk := source.read(_CHUNK):
                    target.write(chunk)
                    if pipe.pending >= _CHUNK:
                        yield pipe.drain()
        readme = zipfile.ZipInfo(README_NAME, date_time=stamp)
        readme.compress_type = zipfile.ZIP_DEFLATED
        readme.external_attr = 0o644 << 16
        archive.writestr(readme, listing.readme)
    yield pipe.drain()


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink: ``zipfile`` then writes data descriptors, and ``drain`` hands bytes on."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self.pending = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.pending = 0
        return data

