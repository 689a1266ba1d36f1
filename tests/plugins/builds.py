"""Real builds shared by the session: one build per (database, plugins, Datasette version,
metadata), attached to fresh Gallery rows in each test.

``prebuilt_bundle`` runs the real builder once per combination in the whole run (xdist processes
share it under a file lock); ``published_gallery`` makes an approved, public gallery of it;
``lasting_gallery`` keeps one gallery id (so one content origin) per combination across tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.servers import LiveGalleryServer


@dataclass(frozen=True)
class Prebuilt:
    """A bundle the real builder wrote once this session, ready to be attached to Gallery rows."""

    build_id: str
    database: Path
    database_name: str
    plugins: tuple[str, ...]
    datasette_version: str
    metadata: dict[str, Any]
    source_key: str
    source_sha256: str
    bundle_bytes: int
    manifest: dict[str, Any]
    log: str


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local bundle store that lives for the whole session (``LocalStorage`` root)."""
    return tmp_path_factory.mktemp("shared-store")


def _run_common_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every process of this pytest run sees: the xdist workers' common temporary root
    (their own roots are ``popen-gwN`` in it), or this process's own root without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _link_missing(source: Path, target: Path) -> None:
    """Hard-link every file under ``source`` that ``target`` lacks, at the same relative path.

    Safe for stores: ``LocalStorage`` writes a new file and renames it over the old one, so a
    write never goes through a link, and the files it shares between builds are content-addressed.
    Another process may be building into ``source`` meanwhile: a file that is gone by the time it
    is linked (a temporary file, renamed) is skipped; the build that wrote it links its files
    itself once done, as does any process that asks for that build later.
    """
    for folder, _dirs, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (target / relative / name).exists():
                try:
                    os.link(Path(folder) / name, target / relative / name)
                except FileNotFoundError:
                    continue


def _build_once(
    database: Path, sha256: str, plugins: tuple[str, ...], version: str, metadata: dict, root: Path, lazy_min: int | None
) -> dict[str, Any]:
    """Run the real builder on one combination into the ``LocalStorage`` at ``root`` (``lazy_min``:
    ``BuildRequest.lazy_database_min_bytes``); return the
    build's facts for ``Prebuilt`` (``build_id``, ``database_name``, ``source_key``,
    ``bundle_bytes``, ``manifest`` as a dict, ``log``). The upload is stored at ``source_key`` first."""
    from django.conf import settings as django_settings

    from builder.director import BuildDirector, BuildRequest
    from builder.storage import LocalStorage
    from gallery.models import database_name_for, new_build_id

    build_id = new_build_id()
    name = database_name_for(database.name)
    source_key = f"uploads/{build_id}/source.db"
    store = LocalStorage(root)
    store.put_file(source_key, database)
    log: list[str] = []
    result = BuildDirector(
        BuildRequest(
            build_id=build_id,
            database_path=database,
            database_name=name,
            title=f"Shared {database.name}",
            description=f"{database.name}, built once for the test session",
            plugins=plugins,
            datasette_version=version,
            source_sha256=sha256,
            pyodide_version=django_settings.PYODIDE_VERSION,
            metadata=metadata,
            runtime_dir=Path(django_settings.PYODIDE_RUNTIME_DIR),
            cache_dir=Path(django_settings.WHEEL_CACHE_DIR),
            lazy_database_min_bytes=lazy_min,
        ),
        storage=store,
        on_state=lambda state: None,
        log=log.append,
    ).run()
    return {
        "build_id": build_id, "database_name": name, "source_key": source_key,
        "bundle_bytes": result.bundle_bytes, "manifest": result.manifest.to_dict(), "log": "\n".join(log) + "\n",
    }  # fmt: skip


@pytest.fixture(scope="session")
def prebuilt_bundle(shared_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Prebuilt]:
    """``prebuilt_bundle(database, plugins=(), datasette_version=default, metadata=None, lazy_database_min_bytes=None) -> Prebuilt``.

    Runs ``builder.director.BuildDirector`` (with its Node check) the first time a combination is
    asked for in this pytest run, and returns the same ``Prebuilt`` after that, so browser tests
    share builds instead of repeating them. A combination is the database's bytes and file name,
    the plugins, the Datasette version, the metadata and the lazy database threshold (``None``:
    the database is read whole, as every build below the default threshold is).

    Under pytest-xdist the processes share the builds too: the first to ask builds into a store
    under the run's common folder (``_run_common_dir``), holding that combination's file lock so
    the other process waits for it instead of building the same thing, and writes the build's
    facts (``<key digest>.json``) last. Every process then gets the files hard-linked into its
    own ``shared_store`` (a test that takes a gallery down removes its build's files from that
    process's store only), and ``restore`` copies a build's own files back from the common store.
    The database name in URLs comes from the file name (``database_name_for``).
    """
    import hashlib
    import json

    from builder.catalog import DEFAULT_DATASETTE_VERSION
    from builder.wheels import cache_lock

    built: dict[str, Prebuilt] = {}
    common = _run_common_dir(tmp_path_factory) / "prebuilt-bundles"
    pristine = common / "store"  # every build's files, never served: tests use shared_store
    pristine.mkdir(parents=True, exist_ok=True)

    def restore(bundle: Prebuilt) -> None:
        # A test that rejects, takes down or deletes its gallery removes these from shared_store
        # (removal.remove_build_files); the next test gets them back.
        for prefix in (f"builds/{bundle.build_id}", f"uploads/{bundle.build_id}"):
            if not (shared_store / prefix).exists():
                shutil.copytree(pristine / prefix, shared_store / prefix)

    def get(
        database: Path,
        plugins: tuple[str, ...] = (),
        datasette_version: str = DEFAULT_DATASETTE_VERSION,
        metadata: dict[str, Any] | None = None,
        lazy_database_min_bytes: int | None = None,
    ) -> Prebuilt:
        sha256 = hashlib.sha256(database.read_bytes()).hexdigest()
        combination: list[Any] = [sha256, database.name, list(plugins), datasette_version, metadata or {}]
        if lazy_database_min_bytes is not None:
            combination.append(lazy_database_min_bytes)
        key = json.dumps(combination, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        if key in built:
            restore(built[key])
            return built[key]
        with cache_lock(common / f"{digest}.lock"):
            facts_file = common / f"{digest}.json"
            if not facts_file.exists():
                facts = _build_once(
                    database, sha256, tuple(plugins), datasette_version, metadata or {}, pristine, lazy_database_min_bytes
                )
                facts_file.write_text(json.dumps(facts))
            facts = json.loads(facts_file.read_text())
        _link_missing(pristine, shared_store)
        built[key] = Prebuilt(
            database=database, plugins=tuple(plugins), datasette_version=datasette_version,
            metadata=metadata or {}, source_sha256=sha256, **facts,
        )  # fmt: skip
        return built[key]

    return get


@pytest.fixture
def published_gallery(
    prebuilt_bundle: Callable[..., Prebuilt], shared_store: Path, settings: Any, transactional_db: None
) -> Callable[..., Any]:
    """``published_gallery(database, plugins=(), datasette_version=..., metadata=None, title=..., gallery=None, gallery_id=None, lazy_database_min_bytes=None) -> Gallery``.

    An approved, public ``Gallery`` whose live build is the session's shared
    bundle of that combination (``prebuilt_bundle``): the rows are made for this
    test (the database is flushed between tests), the bundle files are not. Points
    ``LOCAL_STORAGE_ROOT`` at the shared store and clears ``S3_BUCKET`` for the test.
    Use it with ``live_gallery_server`` to open the gallery in Chromium.

    With ``gallery`` (one this fixture returned), that gallery gets the bundle as a
    new live build instead, as when its publisher publishes again: its database
    name, plugins, metadata and Datasette version follow the new build, and the
    earlier build stays ready (reachable at ``gallery.pinned_url(build_id)``). The
    combination must differ from the gallery's earlier builds (same combination,
    same build id). ``title`` is ignored then.

    With ``gallery_id``, the new gallery gets that id (so that content origin)
    instead of a random one: ``lasting_gallery`` uses it to serve one origin across tests.
    """
    from builder.manifest import Manifest
    from gallery.models import Approval, Build, BuildReview, BuildState, Gallery, bundled_settings
    from gallery.services import publishing
    from worker_shell.tasks import build_facts

    settings.S3_BUCKET = ""
    settings.LOCAL_STORAGE_ROOT = shared_store

    def make(
        database: Path,
        plugins: tuple[str, ...] = (),
        datasette_version: str | None = None,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
        gallery: Gallery | None = None,
        gallery_id: str | None = None,
        lazy_database_min_bytes: int | None = None,
    ) -> Gallery:
        options: dict[str, Any] = {"datasette_version": datasette_version} if datasette_version else {}
        if lazy_database_min_bytes is not None:
            options["lazy_database_min_bytes"] = lazy_database_min_bytes
        bundle = prebuilt_bundle(database, tuple(plugins), metadata=metadata, **options)
        described = {
            "database_name": bundle.database_name,
            "plugins": list(bundle.plugins),
            "metadata": bundle.metadata,
            "datasette_version": bundle.datasette_version,
        }
        if gallery is None:
            gallery = Gallery.objects.create(
                **({"id": gallery_id} if gallery_id else {}),
                title=title or f"Shared {database.name}",
                description=f"{database.name}, built once for the test session",
                moderation_state=Gallery.ModerationState.APPROVED,
                **described,
            )
        else:
            Gallery.objects.filter(pk=gallery.pk).update(**described)
        gallery.refresh_from_db()
        build = Build.objects.create(
            id=bundle.build_id,
            gallery=gallery,
            state=BuildState.READY,
            bundle_settings=bundled_settings(gallery),
            review=BuildReview.APPROVED,
            approval=Approval.OPERATOR,
            log=bundle.log,
            source_key=bundle.source_key,
            source_sha256=bundle.source_sha256,
            source_bytes=bundle.database.stat().st_size,
            bundle_bytes=bundle.bundle_bytes,
            **build_facts(Manifest.from_dict(bundle.manifest)),  # tables, card, scan flags: as the worker records them
        )
        publishing.publish_build(build)
        gallery.refresh_from_db()
        assert gallery.is_public
        return gallery

    return make


@pytest.fixture(scope="session")
def lasting_gallery_ids() -> dict[tuple[Any, ...], str]:
    """The gallery id ``lasting_gallery`` gave each combination this session (filled as tests ask)."""
    return {}


@pytest.fixture
def lasting_gallery(
    published_gallery: Callable[..., Any],
    lasting_gallery_ids: dict[tuple[Any, ...], str],
    live_gallery_server: LiveGalleryServer,
) -> Callable[..., Any]:
    """``lasting_gallery(database, plugins=(), datasette_version=None, metadata=None) -> Gallery``.

    ``published_gallery`` with the same gallery id, so the same content origin
    (``http://<id>.localhost:<port>/``), for a combination in every test of the
    session. The rows are made again in each test (the transactional database is
    flushed after each one) and the bundle is the session's shared build, so a
    browser context kept open across tests (its Service Worker, Cache Storage and
    booted Datasette) finds its gallery served by the session's one live server
    whenever a test runs. Between tests nothing serves it: keep navigations inside tests.
    """
    import json

    from gallery.models import new_gallery_id

    def make(
        database: Path,
        plugins: tuple[str, ...] = (),
        datasette_version: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        key = (str(database), tuple(plugins), datasette_version, json.dumps(metadata or {}, sort_keys=True))
        gallery_id = lasting_gallery_ids.setdefault(key, new_gallery_id())
        return published_gallery(
            database, plugins, datasette_version=datasette_version, metadata=metadata, gallery_id=gallery_id
        )

    return make
