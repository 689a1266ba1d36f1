"""The publish form runs the whole SQLite header check (``builder.sqlite_check.check_header``) before storing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery.models import Build, Gallery
from tests.corpus.make_corpus import REFUSED, Case

AT_UPLOAD = tuple(case for case in REFUSED if case.stage == "upload")


@pytest.mark.django_db
@pytest.mark.parametrize("case", AT_UPLOAD, ids=[case.name for case in AT_UPLOAD])
def test_a_file_whose_header_or_size_is_wrong_is_refused_by_the_form_and_nothing_is_stored(
    client, upload_data, storage, sent_builds, django_capture_on_commit_callbacks, corpus: dict[str, Path], case: Case
) -> None:
    upload = SimpleUploadedFile(case.filename, corpus[case.name].read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("gallery:publish"), upload_data(file=upload))
    assert response.status_code == 400
    (error,) = response.context["form"].errors["file"]
    assert case.refusal in error
    assert "upload" in error.lower() or "choose" in error.lower(), "the error says what to do"
    assert not Gallery.objects.exists() and not Build.objects.exists()
    assert list(storage.keys("uploads/")) == [] and sent_builds == []


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["wal_mode", "fts5", "html_names", "view_load_extension"])
def test_a_whole_sqlite_file_passes_the_forms_check_and_waits_for_the_build(
    client, upload_data, storage, sent_builds, django_capture_on_commit_callbacks, corpus: dict[str, Path], case: str
) -> None:
    upload = SimpleUploadedFile(f"{case}.db", corpus[case].read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("gallery:publish"), upload_data(file=upload))
    assert response.status_code == 302, response.content.decode()[:500]
    assert len(sent_builds) == 1
