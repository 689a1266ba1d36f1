"""The hostile and broken corpus (``tests/corpus``) through the real publish path and ONE real Celery worker.

Files the header shows to be wrong are refused in the web request (nothing stored, no gallery);
the same bytes smuggled into storage are refused again by the build. Files only opening shows to
be wrong fail their build with the message, leave no bundle file and no public gallery. The
worker stays up throughout: every accepted file published after them builds to ready.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files import File
from django.db import transaction
from django.test import Client
from django.urls import reverse

from gallery.models import Build, BuildState, Gallery
from gallery.services import galleries, uploads
from gallery.storage import get_storage
from tests.corpus.make_corpus import ACCEPTED, HTML_COLUMN, HTML_TABLE, HTML_VALUE, REFUSED, Case

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _accept(path: Path) -> Build:
    """``galleries.accept_upload`` as the ``publish`` command does it: the gallery starts approved."""
    with path.open("rb") as fh:
        return galleries.accept_upload(
            upload=File(fh, name=path.name),
            filename=path.name,
            title=path.stem,
            plugins=[],
            by_operator=True,
        )


def _smuggled(good: Path, bad: Path) -> Build:
    """A build of ``good`` whose stored upload is replaced by ``bad`` before it is queued.

    What the build does with bytes that never passed the web request's check (a store written
    by other means, a check that changed): it must check them again.
    """
    with transaction.atomic():  # the build is enqueued on commit, after the swap
        build = _accept(good)
        get_storage().put_bytes(build.source_key, bad.read_bytes())
    return build


def _content(gallery: Gallery, path: str = "/") -> int:
    return Client(HTTP_HOST=f"{gallery.id}.localhost:8000").get(path).status_code


def _check_refused(build: Build, case: Case) -> None:
    assert build.state == BuildState.FAILED, f"{case.name}: {build.state}\n{build.log}"
    assert case.refusal in build.failure_reason, build.failure_reason
    assert "upload" in build.failure_reason.lower(), "the reason says what to do with the file"
    assert f"Failed: {build.failure_reason}" in build.log
    assert not list(get_storage().keys(f"builds/{build.id}/")), "no bundle file is left"
    gallery = Gallery.objects.get(pk=build.gallery_id)
    assert gallery.live_build_id is None and not gallery.is_public
    assert _content(gallery) == 404


def test_the_corpus_is_refused_with_reasons_and_the_same_worker_then_builds_every_accepted_file(
    celery_worker, s3_bucket, corpus: dict[str, Path], wait_for_build: Callable[..., Build], subtests, admin_client
) -> None:
    storage = get_storage()
    good = corpus["one_empty_table"]

    # 1. Refused in the web request: UploadRejected, nothing stored, no gallery.
    at_upload = [case for case in REFUSED if case.stage == "upload"]
    for case in at_upload:
        with subtests.test("refused at upload", case=case.name):
            with pytest.raises(uploads.UploadRejected) as refused:
                _accept(corpus[case.name])
            assert case.refusal in refused.value.args[0]
            assert not Gallery.objects.exists()
            assert not list(storage.keys("uploads/")), "a refused upload leaves nothing in storage"
    smuggled = [(case, _smuggled(good, corpus[case.name])) for case in at_upload]

    # 2. Refused by the build: every file at once, one worker.
    opened = [(case, _accept(corpus[case.name])) for case in REFUSED if case.stage == "build"]
    for case, build in smuggled + opened:
        with subtests.test("refused by the build", case=case.name):
            _check_refused(wait_for_build(build, timeout=120), case)
    assert celery_worker.process.poll() is None, "the worker is still up"

    # 3. The same worker builds every accepted file.
    accepted = [(case, _accept(corpus[case.name])) for case in ACCEPTED]
    for case, build in accepted:
        with subtests.test("accepted", case=case.name):
            build = wait_for_build(build, timeout=300)
            assert build.state == BuildState.READY, build.log
            gallery = Gallery.objects.get(pk=build.gallery_id)
            assert gallery.is_public and _content(gallery) == 200
            if case.name == "wal_mode":
                (warning,) = build.warnings
                assert "not checkpointed before upload" in warning and f"Warning: {warning}" in build.log
            else:
                assert build.warnings == []
    builds = {case.name: build for case, build in accepted}

    # 4. HTML and script in table names, column names and values are shown as text.
    wal_page = Client().get(builds["wal_mode"].get_absolute_url()).content.decode()
    assert 'class="notice warning"' in wal_page and "not checkpointed before upload" in wal_page
    html_build = builds["html_names"]
    html_build.refresh_from_db()
    assert HTML_TABLE in html_build.log, "the log names the table"
    pages = {
        "build page": admin_client.get(html_build.get_absolute_url()),  # its log is for the publisher and staff
        "admin build": admin_client.get(reverse("admin:gallery_build_change", args=[html_build.id])),
        "admin gallery": admin_client.get(reverse("admin:gallery_gallery_change", args=[html_build.gallery_id])),
        "admin galleries": admin_client.get(reverse("admin:gallery_gallery_changelist")),
    }
    for label, response in pages.items():
        with subtests.test("rendered inert", page=label):
            assert response.status_code == 200
            text = response.content.decode()
            for markup in (HTML_TABLE, HTML_COLUMN, HTML_VALUE):
                assert markup not in text, f"{label} shows {markup} unescaped"
    assert "&lt;script&gt;alert(&quot;table&quot;)&lt;/script&gt;" in pages["build page"].content.decode()
    assert "&lt;script&gt;alert(&quot;table&quot;)&lt;/script&gt;" in pages["admin gallery"].content.decode()
