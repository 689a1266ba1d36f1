"""A build's ``manifest.json`` as typed dataclasses: the only place it is written and parsed.

Every build stores ``builds/<build-id>/manifest.json`` (``builder.director`` writes it with
``Manifest.to_json`` just before ``sw.js`` and ``index.html``). It says what the build holds: its
versions and plugins, the canonical database, every bundle file with its storage key, URL on the
content origin, size, sha256 and stored gzip and Brotli copies, the Content-Security-Policy, the tables, the
data scan, the share card, the publisher's warnings and the self-host zip.

Readers parse it with ``Manifest.from_json``: ``builder.download`` (the self-host zip),
``worker_shell.tasks.build_facts`` (what the app shows about a build), ``gallery.content`` (the
policy, the gzip and Brotli copies and the zip's name) and ``gallery.garbage`` (the shared files a build needs).

Fields without a default have been in every manifest since bundle files had URLs; the others
came later (``content_security_policy``, ``tables``, ``scan``, ``card``, ``warnings``,
``download``, a file's ``gzip`` and ``brotli``), so an older manifest reads with their defaults. Anything else
that is missing or of the wrong type raises ``InvalidManifest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

#: JSON types by the names the error messages use.
_KIND_NAMES: dict[type, str] = {str: "a string", int: "a whole number", list: "a list", dict: "an object"}
_PLURAL_NAMES: dict[type, str] = {str: "strings", dict: "objects"}
_REQUIRED = object()


class InvalidManifest(ValueError):
    """A manifest is malformed (not JSON, not an object, a field missing or of the wrong type), or it
    cannot make a self-host zip (``builder.download``); ``args[0]`` says what is wrong and where."""


def _take(data: Mapping[str, Any], name: str, kind: type, where: str, default: Any = _REQUIRED) -> Any:
    """``data[name]`` if it is of JSON type ``kind`` (``str``, ``int``, ``list``, ``dict``).

    A missing (or ``null``) field gives ``default``, or raises ``InvalidManifest`` without one.
    """
    value = data.get(name)
    if value is None:
        if default is _REQUIRED:
            raise InvalidManifest(f"{where} has no {name}")
        return default
    # JSON's true and false are Python ints too; they are no sizes.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidManifest(f"{where} has {name} that is not {_KIND_NAMES[kind]}: {value!r}")
    return value


def _list_of(data: Mapping[str, Any], name: str, kind: type, where: str, default: Any = _REQUIRED) -> tuple[Any, ...]:
    """``data[name]`` as a tuple whose items are all of JSON type ``kind`` (else ``InvalidManifest``)."""
    values = _take(data, name, list, where, default)
    if not all(isinstance(value, kind) for value in values):
        raise InvalidManifest(f"{where} has {name} that is not a list of {_PLURAL_NAMES[kind]}: {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class GzipCopy:
    """The stored gzip copy of a bundle file: storage ``key`` (``<file key>.gz``) and ``size`` in bytes."""

    key: str
    size: int


@dataclass(frozen=True)
class BrotliCopy:
    """The stored Brotli copy of a bundle file: storage ``key`` (``<file key>.br``) and ``size`` in bytes."""

    key: str
    size: int


@dataclass(frozen=True)
class ManifestFile:
    """One bundle file: storage ``key``, ``url`` path on the content origin, ``size`` in bytes, hex ``sha256``.

    ``gzip`` is its stored gzip copy (``builder.gzip_copies``), or ``None``; ``brotli`` its
    stored Brotli copy (``builder.brotli_copies``, only where smaller than the gzip one), or ``None``.
    """

    key: str
    url: str
    size: int
    sha256: str
    gzip: GzipCopy | None = None
    brotli: BrotliCopy | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: ``{"key", "url", "size", "sha256"}``, plus ``"gzip"`` and ``"brotli"``
        (each ``{"key", "size"}``) for the copies there are."""
        entry: dict[str, Any] = {"key": self.key, "url": self.url, "size": self.size, "sha256": self.sha256}
        if self.gzip is not None:
            entry["gzip"] = {"key": self.gzip.key, "size": self.gzip.size}
        if self.brotli is not None:
            entry["brotli"] = {"key": self.brotli.key, "size": self.brotli.size}
        return entry

    @classmethod
    def from_dict(cls, data: object, where: str) -> Self:
        """Read one ``files`` entry; raises ``InvalidManifest``."""
        if not isinstance(data, dict) or any(data.get(name) is None for name in ("key", "url", "size")):
            raise InvalidManifest(f"{where} has a file entry without key, url and size: {data!r}")
        copy = _take(data, "gzip", dict, where, None)
        brotli = _take(data, "brotli", dict, where, None)
        return cls(
            key=_take(data, "key", str, where),
            url=_take(data, "url", str, where),
            size=_take(data, "size", int, where),
            sha256=_take(data, "sha256", str, where),
            gzip=GzipCopy(_take(copy, "key", str, where), _take(copy, "size", int, where)) if copy else None,
            brotli=BrotliCopy(_take(brotli, "key", str, where), _take(brotli, "size", int, where)) if brotli else None,
        )


@dataclass(frozen=True)
class ManifestDatabase:
    """The canonical database: ``name`` in Datasette's URLs, storage ``key``, its ``tables`` and ``views`` by name."""

    name: str
    key: str
    tables: tuple[str, ...]
    views: tuple[str, ...]


@dataclass(frozen=True)
class StoredImage:
    """A file for pages about the gallery (the share card): storage ``key`` and ``url`` on the content origin."""

    key: str
    url: str


@dataclass(frozen=True)
class DownloadZip:
    """The self-host zip (``builder.download``): storage ``key`` (``builds/<build-id>/download.zip``), ``size`` in bytes."""

    key: str
    size: int


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What ``builds/<build-id>/manifest.json`` says; fields in the order the JSON lists them.

    ``plugins``: catalog names, sorted; ``datasette_settings``: the bundle's Datasette settings;
    ``content_security_policy``: ``builder.csp.gallery_policy`` of the plugins (``None`` in
    manifests older than it); ``metadata``: title, description and the publisher's metadata;
    ``tables``: ``builder.tables.describe_tables``' list; ``scan``: ``builder.scan.scan_database``'s
    flags; ``card``: the share card; ``files``: what a reader's runtime downloads plus the card,
    the generated files and ``index.html``, in storage order; ``first_visit_bytes``: what a
    reader downloads on a first visit; ``warnings``: sentences for the publisher from the
    database check; ``download``: the self-host zip (``None`` before it is written).
    """

    build_id: str
    pyodide_version: str
    datasette_version: str
    plugins: tuple[str, ...]
    database: ManifestDatabase
    source_sha256: str
    datasette_settings: dict[str, Any]
    content_security_policy: str | None = None
    metadata: dict[str, Any]
    tables: tuple[dict[str, Any], ...] = ()
    scan: tuple[dict[str, Any], ...] = ()
    card: StoredImage | None = None
    files: tuple[ManifestFile, ...]
    first_visit_bytes: int
    warnings: tuple[str, ...] = ()
    download: DownloadZip | None = None

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a JSON object (lists, not tuples; ``null`` for a field that is ``None``)."""
        return {
            "build_id": self.build_id,
            "pyodide_version": self.pyodide_version,
            "datasette_version": self.datasette_version,
            "plugins": list(self.plugins),
            "database": {"name": self.database.name, "key": self.database.key,
                         "tables": list(self.database.tables), "views": list(self.database.views)},
            "source_sha256": self.source_sha256,
            "datasette_settings": self.datasette_settings,
            "content_security_policy": self.content_security_policy,
            "metadata": self.metadata,
            "tables": list(self.tables),
            "scan": list(self.scan),
            "card": {"key": self.card.key, "url": self.card.url} if self.card else None,
            "files": [entry.to_dict() for entry in self.files],
            "first_visit_bytes": self.first_visit_bytes,
            "warnings": list(self.warnings),
            "download": {"key": self.download.key, "size": self.download.size} if self.download else None,
        }  # fmt: skip

    def to_json(self) -> str:
        """The text of ``manifest.json`` (indented by one space, fields in order)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: object, where: str = "manifest.json") -> Manifest:
        """Read a manifest from its JSON object; ``where`` names it in error messages. Raises ``InvalidManifest``."""
        if not isinstance(data, dict):
            raise InvalidManifest(f"{where} is not a bundle manifest: not a JSON object")
        # Read in the JSON's order, so the first problem is the one reported.
        return cls(
            build_id=_take(data, "build_id", str, where),
            pyodide_version=_take(data, "pyodide_version", str, where),
            datasette_version=_take(data, "datasette_version", str, where),
            plugins=_list_of(data, "plugins", str, where),
            database=_database(_take(data, "database", dict, where), where),
            source_sha256=_take(data, "source_sha256", str, where),
            datasette_settings=_take(data, "datasette_settings", dict, where),
            content_security_policy=_take(data, "content_security_policy", str, where, None),
            metadata=_take(data, "metadata", dict, where),
            tables=_list_of(data, "tables", dict, where, []),
            scan=_list_of(data, "scan", dict, where, []),
            card=_card(_take(data, "card", dict, where, None), where),
            files=tuple(ManifestFile.from_dict(entry, where) for entry in _take(data, "files", list, where)),
            first_visit_bytes=_take(data, "first_visit_bytes", int, where),
            warnings=_list_of(data, "warnings", str, where, []),
            download=_download(_take(data, "download", dict, where, None), where),
        )

    @classmethod
    def from_json(cls, text: bytes | str, where: str = "manifest.json") -> Manifest:
        """Parse the text of a ``manifest.json``; ``where`` (its storage key) names it in error messages.

        Raises ``InvalidManifest`` when the text is not JSON or not a manifest (``from_dict``).
        """
        try:
            data = json.loads(text)
        except ValueError as exc:  # UnicodeDecodeError included
            raise InvalidManifest(f"{where} is not JSON: {exc}") from exc
        return cls.from_dict(data, where)


def _database(data: dict[str, Any], where: str) -> ManifestDatabase:
    return ManifestDatabase(
        name=_take(data, "name", str, where),
        key=_take(data, "key", str, where),
        tables=_list_of(data, "tables", str, where),
        views=_list_of(data, "views", str, where),
    )


def _card(data: dict[str, Any] | None, where: str) -> StoredImage | None:
    return StoredImage(_take(data, "key", str, where), _take(data, "url", str, where)) if data else None


def _download(data: dict[str, Any] | None, where: str) -> DownloadZip | None:
    return DownloadZip(_take(data, "key", str, where), _take(data, "size", int, where)) if data else None
