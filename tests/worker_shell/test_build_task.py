"""The build task in a real Celery worker process, consuming from Redis, writing to PostgreSQL."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from builder.download import download_key
from gallery.models import Build, BuildState, Gallery
from tests.support.loopback import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_builds_chinook_to_ready_and_it_goes_live(celery_worker, shared_data: Path, publish, wait_for_build) -> None:
    build = wait_for_build(publish(shared_data / "chinook.sqlite", ["datasette-pretty-json"]))
    assert build.state == BuildState.READY, build.log
    for label in ("Validating the database", "Resolving Datasette and plugins", "Writing the bundle", "Uploading the bundle"):
        assert f"== {label}" in build.log
    assert build.bundle_bytes and build.bundle_bytes > 10_000_000
    assert build.started_at and build.finished_at and build.started_at <= build.finished_at
    # The data scan's flags are stored for the moderation queue (builder.scan).
    assert [(flag["table"], flag["column"], flag["kind"]) for flag in build.scan_flags][:3] == [
        ("Customer", "Email", "email"), ("Customer", "Fax", "phone"), ("Customer", "Phone", "phone"),
    ]  # fmt: skip
    gallery = Gallery.objects.get(pk=build.gallery_id)
    assert gallery.live_build_id == build.id
    assert gallery.is_public, "the operator's upload is approved, and its build goes live once ready"
    assert f"== Ready. Gallery URL: {gallery.url}\n" in build.log
    from gallery.storage import get_storage

    storage = get_storage()
    assert storage.exists(f"builds/{build.id}/index.html")
    # The self-host zip is stored with the build, and its size recorded for the gallery page.
    assert build.download_bytes and build.download_bytes == storage.size(download_key(build.id)) > 5_000_000


def test_a_build_stored_without_its_zip_gets_it_from_a_worker_on_the_first_download(
    celery_worker, shared_data: Path, publish, wait_for_build, client
) -> None:
    from gallery.storage import get_storage

    build = wait_for_build(publish(shared_data / "chinook.sqlite"))  # the operator's: approved, live
    assert build.state == BuildState.READY, build.log
    # As a build made before builds stored their zip: none stored, no size recorded.
    storage = get_storage()
    storage.local_path(download_key(build.id)).unlink()
    Build.objects.filter(pk=build.pk).update(download_bytes=None)
    host = f"{build.gallery_id}.localhost:8000"
    first = client.get(f"/_download/{build.id}.zip", HTTP_HOST=host)
    assert first.status_code == 503 and first["Retry-After"] == "60"
    build = wait_for_build(build, until=lambda b: b.download_bytes is not None, timeout=120)
    assert build.download_bytes == storage.size(download_key(build.id))
    celery_worker.wait_for_log(r"store_download\[.*\] succeeded", timeout=30)
    served = client.get(f"/_download/{build.id}.zip", HTTP_HOST=host)
    assert served.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(served.streaming_content))) as archive:
        assert archive.testzip() is None
        assert "README.txt" in archive.namelist()


def test_a_damaged_database_fails_the_build_with_a_reason(
    celery_worker, tmp_path: Path, shared_data: Path, publish, wait_for_build
) -> None:
    damaged = tmp_path / "damaged.db"
    raw = bytearray((shared_data / "chinook.sqlite").read_bytes())
    page_size = int.from_bytes(raw[16:18], "big")
    raw[page_size * 60 : page_size * 61] = b"\xa5" * page_size  # real header and size, a page of noise
    damaged.write_bytes(bytes(raw))
    build = wait_for_build(publish(damaged))
    assert build.state == BuildState.FAILED
    assert "SQLite" in build.failure_reason
    assert Gallery.objects.get(pk=build.gallery_id).live_build_id is None


def test_a_finished_build_is_not_built_again(celery_worker, shared_data: Path, publish, wait_for_build) -> None:
    from gallery.services import queue

    build = wait_for_build(publish(shared_data / "chinook.sqlite"))
    assert build.state == BuildState.READY
    log_before = build.log
    queue.send_build(build.id)
    celery_worker.wait_for_log(r"build_gallery\[.*\] succeeded in .*: 'ready'", timeout=60)
    time.sleep(1)
    build.refresh_from_db()
    assert build.log == log_before


def test_a_storage_outage_is_retried_then_fails_with_a_clear_reason(
    celery_worker_factory, moto_s3: str, shared_data: Path, publish, wait_for_build
) -> None:
    build = publish(shared_data / "chinook.sqlite")  # stored in the local folder
    # The worker's store is an S3 endpoint on a loopback port where nothing listens: a real outage.
    dead = f"http://127.0.0.1:{free_port()}"
    worker = celery_worker_factory(
        env={"S3_BUCKET": "outage", "S3_ENDPOINT_URL": dead, "S3_REGION": "us-east-1", "STORAGE_RETRY_BUDGET": "3"}
    )
    build = wait_for_build(build, timeout=120)
    assert build.state == BuildState.FAILED
    assert build.failure_reason.startswith("Storage was unavailable during the build")
    assert "Rebuild" in build.failure_reason
    assert "Storage fault" in build.log and "gave up after" in build.log
    assert "retrying in" in worker.log
