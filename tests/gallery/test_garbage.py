"""``gallery.services.garbage``: superseded builds, orphaned uploads and unreferenced shared files leave storage.

Local store in ``tmp_path`` (``storage``, from ``conftest.py``); one test runs against moto's S3 server.
"""

from __future__ import annotations

import os
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from builder.catalog import load_lock
from builder.manifest import BrotliCopy, GzipCopy, Manifest, ManifestDatabase, ManifestFile
from builder.pyodide import PYODIDE_VERSION
from builder.storage import Storage
from gallery.models import Build, BuildReview, BuildState, Gallery
from gallery.services import garbage
from gallery.services.garbage import collect_garbage
from gallery.storage import get_storage

pytestmark = pytest.mark.django_db

RUNTIME = f"runtime/pyodide-{PYODIDE_VERSION}/pyodide.asm.wasm"
OLD_RUNTIME = "runtime/pyodide-0.27.0/pyodide.asm.wasm"
USED_WHEEL = "wheels/" + "a1" * 32 + "/used-1.0-py3-none-any.whl"
OLD_WHEEL = "wheels/" + "b2" * 32 + "/old-1.0-py3-none-any.whl"
LATER = 2 * 24 * 3600  # seconds: well past the grace periods


def store_build(
    gallery: Gallery,
    state: str = BuildState.READY,
    *,
    shared: tuple[str, ...] = (RUNTIME, USED_WHEEL),
    source_key: str | None = None,
    review: str = BuildReview.APPROVED,
) -> Build:
    """A build row of ``gallery`` with its files stored as ``builder.bundle`` lays them out.

    Its upload is ``uploads/<build id>/source.db`` unless ``source_key`` names another (a
    rebuild); ``shared`` are the runtime and wheel keys its manifest lists (stored too). The
    runtime keys and the build's ``index.html`` have gzip and Brotli copies (``<key>.gz``, ``<key>.br``), listed too.
    """
    build = Build.objects.create(gallery=gallery, state=state, source_key="", source_sha256="0" * 64, source_bytes=16,
                                 review=review)  # fmt: skip
    build.source_key = source_key or f"uploads/{build.id}/source.db"
    build.save(update_fields=["source_key"])
    storage = get_storage()
    storage.put_bytes(build.source_key, b"SQLite format 3\x00")
    storage.put_bytes(f"builds/{build.id}/index.html", b"<!doctype html>")
    storage.put_bytes(f"builds/{build.id}/index.html.gz", b"\x1f\x8b")
    storage.put_bytes(f"builds/{build.id}/index.html.br", b"\x0b")
    files = tuple(
        ManifestFile(key=key, url="/_" + key, size=1, sha256="0" * 64,
                     gzip=GzipCopy(key + ".gz", 2) if key.startswith("runtime/") else None,
                     brotli=BrotliCopy(key + ".br", 1) if key.startswith("runtime/") else None)
        for key in shared
    )  # fmt: skip
    for key in shared:
        if key.startswith("runtime/"):
            storage.put_bytes(key + ".gz", b"\x1f\x8b")
            storage.put_bytes(key + ".br", b"\x0b")
    manifest = Manifest(
        build_id=build.id, pyodide_version=PYODIDE_VERSION, datasette_version="0.65.5", plugins=(),
        database=ManifestDatabase(name="data", key=f"builds/{build.id}/data/data.db", tables=("t",), views=()),
        source_sha256="0" * 64, datasette_settings={}, metadata={}, files=files, first_visit_bytes=len(files),
    )  # fmt: skip
    storage.put_bytes(f"builds/{build.id}/manifest.json", manifest.to_json().encode())
    for key in shared:
        storage.put_bytes(key, b"shared")
    return build


def stored(storage: Storage, prefix: str) -> bool:
    return any(True for _ in storage.keys(prefix))


def every_key(storage: Storage) -> list[str]:
    return sorted(key for top in ("builds/", "uploads/", "runtime/", "wheels/") for key in storage.keys(top))


@pytest.fixture
def kept_two(settings) -> int:
    settings.BUILDS_KEPT_PER_GALLERY = 2
    return 2


def test_builds_beyond_the_last_k_lose_their_files_but_never_the_live_waiting_or_running_ones(
    gallery: Gallery, other_gallery: Gallery, storage: Storage, kept_two: int
) -> None:
    oldest = store_build(gallery)
    live = store_build(gallery)
    waiting = store_build(gallery, review=BuildReview.PENDING)  # a new version a moderator has not seen yet
    failed = store_build(gallery, BuildState.FAILED)
    newest_ready = store_build(gallery)
    running = store_build(gallery, BuildState.BUNDLING)
    Gallery.objects.filter(pk=gallery.pk).update(live_build=live)
    elsewhere = [store_build(other_gallery) for _ in range(2)]  # within the last K of its gallery

    collected = collect_garbage()

    assert sorted(collected.builds) == sorted([oldest.id, failed.id])
    for build in (oldest, failed):
        build.refresh_from_db()
        assert build.files_deleted
        assert not stored(storage, f"builds/{build.id}/") and not stored(storage, f"uploads/{build.id}/")
    for build in (live, waiting, newest_ready, running, *elsewhere):
        build.refresh_from_db()
        assert not build.files_deleted
        assert stored(storage, f"builds/{build.id}/") and stored(storage, f"uploads/{build.id}/")
    assert collect_garbage().builds == []  # idempotent


def test_the_newest_ready_build_stays_however_many_builds_failed_after_it(
    gallery: Gallery, storage: Storage, settings
) -> None:
    settings.BUILDS_KEPT_PER_GALLERY = 1
    Gallery.objects.filter(pk=gallery.pk).update(moderation_state=Gallery.ModerationState.PENDING)
    corrected = store_build(gallery)  # what a moderator would approve (services.moderation.build_to_review)
    failures = [store_build(gallery, BuildState.FAILED) for _ in range(2)]
    assert collect_garbage().builds == [failures[0].id]
    assert stored(storage, f"builds/{corrected.id}/")


def test_an_upload_stays_while_a_newer_rebuild_of_it_keeps_its_files(gallery: Gallery, storage: Storage, settings) -> None:
    settings.BUILDS_KEPT_PER_GALLERY = 1
    first = store_build(gallery)
    rebuild = store_build(gallery, source_key=first.source_key)
    Gallery.objects.filter(pk=gallery.pk).update(live_build=rebuild)
    assert collect_garbage().builds == [first.id]
    assert not stored(storage, f"builds/{first.id}/")
    assert storage.exists(first.source_key), "the live build's upload is what a Rebuild reads"


def test_uploads_no_build_names_go_once_a_day_old(gallery: Gallery, storage: Storage) -> None:
    build = store_build(gallery)
    storage.put_bytes("uploads/abandoned0000001/source.db", b"SQLite format 3\x00")  # the request died
    storage.put_bytes("uploads/juststored000001/source.db", b"SQLite format 3\x00")  # committing right now
    a_day_ago = time.time() - 24 * 3600 - 60
    for key in ("uploads/abandoned0000001/source.db", build.source_key):
        os.utime(storage.local_path(key), (a_day_ago, a_day_ago))

    assert collect_garbage().uploads == ["uploads/abandoned0000001/"]
    assert not stored(storage, "uploads/abandoned0000001/")
    assert storage.exists("uploads/juststored000001/source.db")
    assert storage.exists(build.source_key)


def test_shared_files_go_when_no_stored_build_and_no_current_lock_refers_to_them(
    gallery: Gallery, storage: Storage, settings
) -> None:
    settings.BUILDS_KEPT_PER_GALLERY = 1
    current_lock = next(iter(load_lock("0.65.5")["packages"].values()))
    current_wheel = f"wheels/{current_lock['sha256']}/{current_lock['filename']}"
    old = store_build(gallery, shared=(OLD_RUNTIME, OLD_WHEEL, USED_WHEEL))
    live = store_build(gallery, shared=(RUNTIME, USED_WHEEL))
    Gallery.objects.filter(pk=gallery.pk).update(live_build=live)
    storage.put_bytes(current_wheel, b"a wheel a build may fetch today")

    assert collect_garbage().shared == [], "within the grace period, even the unreferenced stay"
    collected = collect_garbage(now=time.time() + LATER)

    assert collected.builds == [] and old.id in Build.objects.filter(files_deleted=True).values_list("pk", flat=True)
    assert collected.shared == [OLD_RUNTIME.rsplit("/", 1)[0] + "/", OLD_WHEEL.rsplit("/", 1)[0] + "/"]
    for key in (RUNTIME, RUNTIME + ".gz", RUNTIME + ".br", USED_WHEEL, current_wheel, f"builds/{live.id}/index.html.gz",
                f"builds/{live.id}/index.html.br"):  # fmt: skip
        assert storage.exists(key), key
    # The gzip and Brotli copies go with their originals: the shared folder's and the removed build's own.
    for key in (OLD_RUNTIME, OLD_RUNTIME + ".gz", OLD_RUNTIME + ".br", OLD_WHEEL, f"builds/{old.id}/index.html.gz",
                f"builds/{old.id}/index.html.br"):  # fmt: skip
        assert not storage.exists(key), key


def test_an_unreadable_manifest_leaves_every_shared_file_alone(gallery: Gallery, storage: Storage) -> None:
    build = store_build(gallery, shared=(OLD_WHEEL,))
    storage.put_bytes(f"builds/{build.id}/manifest.json", b"{not json")
    Build.objects.create(gallery=gallery, state=BuildState.READY, source_key="uploads/z/source.db",
                         source_sha256="0" * 64, source_bytes=1, files_deleted=True)  # fmt: skip
    collected = collect_garbage(now=time.time() + LATER)
    assert collected.shared == [] and collected.failed == ["runtime/, wheels/"]
    assert storage.exists(OLD_WHEEL)


def test_a_dry_run_lists_and_removes_nothing(gallery: Gallery, storage: Storage, kept_two: int) -> None:
    builds = [store_build(gallery, shared=(OLD_WHEEL,)) for _ in range(3)]
    storage.put_bytes("uploads/abandoned0000001/source.db", b"x")
    before = every_key(storage)

    collected = collect_garbage(dry_run=True, now=time.time() + LATER)

    assert collected.builds == [builds[0].id]
    assert collected.uploads == ["uploads/abandoned0000001/"]
    assert every_key(storage) == before
    assert not Build.objects.filter(files_deleted=True).exists()


def test_the_command_reports_what_it_removed(gallery: Gallery, storage: Storage, kept_two: int) -> None:
    builds = [store_build(gallery) for _ in range(3)]
    out = StringIO()
    call_command("collect_garbage", "--dry-run", stdout=out)
    assert f"would remove build {builds[0].id}'s files" in out.getvalue()
    assert "Would remove the files of 1 superseded builds, 0 orphaned uploads and 0 unreferenced shared folders." in out.getvalue()
    out = StringIO()
    call_command("collect_garbage", stdout=out)
    assert "Removed the files of 1 superseded builds" in out.getvalue()
    assert not stored(storage, f"builds/{builds[0].id}/")


def test_the_command_fails_when_storage_refuses(gallery: Gallery, kept_two: int, storage_outage) -> None:
    Build.objects.bulk_create(
        Build(gallery=gallery, state=BuildState.FAILED, source_key=f"uploads/{n}/source.db", source_sha256="0" * 64,
              source_bytes=1) for n in range(3)
    )  # fmt: skip
    with pytest.raises(CommandError, match="Storage refused"):
        call_command("collect_garbage", stdout=StringIO())
    assert not Build.objects.filter(files_deleted=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_gallery_another_machine_holds_is_left_for_the_next_run(gallery: Gallery, storage: Storage, kept_two: int) -> None:
    builds = [store_build(gallery) for _ in range(3)]
    locked, release = threading.Event(), threading.Event()

    def other_machine() -> None:
        try:
            with transaction.atomic():
                Gallery.objects.select_for_update().get(pk=gallery.pk)  # e.g. collecting it, or publishing a build
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_machine)
    thread.start()
    try:
        assert locked.wait(10)
        assert collect_garbage().builds == []  # no waiting on the lock, nothing removed twice
    finally:
        release.set()
        thread.join()
    assert collect_garbage().builds == [builds[0].id]


@pytest.mark.integration
def test_garbage_collection_works_on_s3(s3_bucket, gallery: Gallery, kept_two: int) -> None:
    storage = get_storage()
    assert type(storage).__name__ == "S3Storage"
    builds = [store_build(gallery, shared=(OLD_WHEEL,)) for _ in range(2)] + [store_build(gallery)]
    Gallery.objects.filter(pk=gallery.pk).update(live_build=builds[-1])
    storage.put_bytes("uploads/abandoned0000001/source.db", b"SQLite format 3\x00")

    collected = collect_garbage(now=time.time() + LATER)

    assert collected.builds == [builds[0].id]
    assert collected.uploads == ["uploads/abandoned0000001/"]
    assert collected.shared == [], "build 2 still lists the old wheel"
    keys = {obj["Key"] for obj in s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name).get("Contents", [])}
    assert not any(key.startswith((f"builds/{builds[0].id}/", f"uploads/{builds[0].id}/", "uploads/abandoned")) for key in keys)
    assert f"builds/{builds[1].id}/manifest.json" in keys and OLD_WHEEL in keys
    assert garbage.collect_garbage(now=time.time() + LATER).builds == []
