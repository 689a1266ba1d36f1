"""Fixtures for the gallery app: storage in tmp_path, a recorded queue, SQLite files, and fake
bundle files for the chain's build (``gallery`` -> ``build`` -> ``bundle``; the rows come from
``tests.plugins.galleries``).

Every test gets a fresh ``LocalStorage`` under ``tmp_path`` and a queue that only
records build ids (``gallery.services.queue.send_build`` is the boundary to the worker).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from builder.download import download_key, store_bundle_zip
from builder.manifest import Manifest, ManifestDatabase, ManifestFile
from builder.pyodide import PYODIDE_VERSION
from builder.storage import LocalStorage, StorageError
from gallery.models import Build, Gallery
from gallery.services import queue
from gallery.storage import get_storage

WHEEL_SHA = "ab" * 32
RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}"


@pytest.fixture(autouse=True)
def storage(settings, tmp_path: Path) -> LocalStorage:
    """A local store under ``tmp_path/storage``, returned by ``get_storage()`` everywhere."""
    settings.S3_BUCKET = ""
    settings.LOCAL_STORAGE_ROOT = tmp_path / "storage"
    (tmp_path / "spool").mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    store = get_storage()
    assert isinstance(store, LocalStorage)
    return store


@pytest.fixture(autouse=True)
def sent_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Build ids handed to the queue, in order; nothing reaches a broker."""
    sent: list[str] = []
    monkeypatch.setattr(queue, "send_build", sent.append)
    return sent


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """django-ratelimit counts live in the cache; start every test at zero."""
    cache.clear()


class OutageStorage(LocalStorage):
    """A store in an outage: every write and read raises ``StorageError``."""

    def _fail(self, *args: object, **kwargs: object) -> None:
        raise StorageError("simulated outage: connection refused")

    put_file = put_bytes = size = open = delete_prefix = _fail  # type: ignore[assignment]

    def local_path(self, key: str) -> Path | None:
        return None


class RemoteStorage(LocalStorage):
    """A local store that answers like S3: no local paths, so content is streamed."""

    def local_path(self, key: str) -> Path | None:
        return None


@pytest.fixture
def storage_outage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> OutageStorage:
    """Make ``get_storage()`` return a store whose every call fails."""
    broken = OutageStorage(tmp_path / "broken")
    monkeypatch.setattr("gallery.storage._storage", broken)
    return broken


@pytest.fixture
def remote_storage(
    monkeypatch: pytest.MonkeyPatch, storage: LocalStorage
) -> RemoteStorage:
    """Serve the same files as ``storage``, but through ``open()`` as for S3."""
    remote = RemoteStorage(storage.root)
    monkeypatch.setattr("gallery.storage._storage", remote)
    return remote


@pytest.fixture
def sqlite_bytes(make_sqlite: Callable[[str], Path]) -> bytes:
    """The bytes of a small valid SQLite database."""
    return make_sqlite("fixture.db").read_bytes()


@pytest.fixture
def upload_data(sqlite_bytes: bytes) -> Callable[..., dict[str, object]]:
    """Return a function building valid publish-form POST data; keyword arguments override fields."""

    def make(**overrides: object) -> dict[str, object]:
        data: dict[str, object] = {
            "file": SimpleUploadedFile("Chinook Sample.sqlite", sqlite_bytes),
            "title": "Chinook",
            "description": "Music store sample",
            "plugins": ["datasette-pretty-json"],
            "visibility": "listed",
            "datasette_version": "0.65.5",
        }
        data.update(overrides)
        return data

    return make


def _bundle_url(key: str, build_id: str) -> str:
    """Where the content origin serves bundle file ``key`` (as ``builder.bundle`` lists it in the manifest)."""
    if key.startswith(f"builds/{build_id}/") and key.endswith(("/index.html", "/sw.js")):
        return "/" + key.rsplit("/", 1)[1]
    if key.startswith(f"builds/{build_id}/"):
        return f"/_build/{key.removeprefix('builds/')}"
    return "/_" + key


@pytest.fixture
def make_bundle(storage: LocalStorage) -> Callable[..., dict[str, bytes]]:
    """``make_bundle(build, metadata=None, download=True) -> {key: bytes}``: store fake bundle files of ``build``.

    The build's own files name the build (so tests can tell builds apart); the
    shared runtime and wheel files are the same for every build; the private
    upload ``uploads/x/source.db`` is stored too, to prove it is never served. A
    ``manifest.json`` lists every bundle file with its key, URL and size, as
    ``builder.bundle`` writes it, with ``metadata`` as the Datasette metadata. With
    ``download``, the self-host zip of those files is stored too
    (``builder.download``) and its size recorded on the row, as a build does; without,
    the build is one made before builds stored their zip.
    """

    def make(build: Build, metadata: dict[str, object] | None = None, download: bool = True) -> dict[str, bytes]:
        prefix = f"builds/{build.id}/"
        files = {
            f"{prefix}index.html": (
                f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>booting {build.id}</title>'
                "</head><body></body></html>"
            ).encode(),
            f"{prefix}sw.js": f"// service worker of build {build.id}\n".encode(),
            f"{prefix}pyodide-lock.json": b'{"packages": {}}',
            f"{prefix}data/chinook.db": b"SQLite format 3\x00" + build.id.encode() + b"\x00" * 100,
            f"{RUNTIME}/pyodide.asm.wasm": b"\x00asm\x01\x00\x00\x00",
            f"{RUNTIME}/pyodide.mjs": b"export const loadPyodide = 1;\n",
            f"{RUNTIME}/python_stdlib.zip": b"PK\x03\x04",
            f"wheels/{WHEEL_SHA}/datasette-0.65.5-py3-none-any.whl": b"PK\x03\x04wheel",
        }
        manifest = Manifest(
            build_id=build.id,
            pyodide_version=PYODIDE_VERSION,
            datasette_version="0.65.5",
            plugins=("datasette-pretty-json",),
            database=ManifestDatabase(name="chinook", key=f"{prefix}data/chinook.db", tables=("album",), views=()),
            source_sha256="0" * 64,
            datasette_settings={},
            metadata={"title": "Chinook", **(metadata or {})},
            files=tuple(
                ManifestFile(key=key, url=_bundle_url(key, build.id), size=len(data), sha256="0" * 64)
                for key, data in files.items()
            ),
            first_visit_bytes=sum(len(data) for data in files.values()),
        )
        files[f"{prefix}manifest.json"] = manifest.to_json().encode()
        files["uploads/x/source.db"] = b"SQLite format 3\x00private"
        for key, data in files.items():
            storage.put_bytes(key, data)
        if download:
            build.download_bytes = store_bundle_zip(storage, build.id, build.created_at)
            Build.objects.filter(pk=build.pk).update(download_bytes=build.download_bytes)
            files[download_key(build.id)] = storage.open(download_key(build.id)).read()
        return files

    return make


@pytest.fixture
def bundle(build: Build, make_bundle: Callable[..., dict[str, bytes]]) -> dict[str, bytes]:
    """Fake bundle files of ``build`` (``make_bundle``); returns ``{key: bytes}``."""
    return make_bundle(build)


@pytest.fixture
def content_client(client, gallery: Gallery):
    """A test client whose requests go to ``gallery``'s content origin."""
    client.defaults["HTTP_HOST"] = f"{gallery.id}.localhost:8000"
    return client
