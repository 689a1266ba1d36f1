"""Ids, names, URLs and build state bookkeeping on the models."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection

from gallery.models import (
    BUILD_ID_RE,
    FINAL_STATES,
    Build,
    BuildState,
    Gallery,
    database_name_for,
    new_build_id,
    new_gallery_id,
)


def test_gallery_ids_are_random_twelve_character_dns_labels_starting_with_a_letter():
    ids = {new_gallery_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(r"[a-z][a-z0-9]{11}", i) for i in ids)


def test_build_ids_are_random_sixteen_characters():
    ids = {new_build_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(BUILD_ID_RE.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("chinook.db", "chinook"),
        ("My Chinook.sqlite", "my-chinook"),
        ("Fixtures_2024.sqlite3", "fixtures_2024"),
        ("../../etc/passwd.db", "passwd"),
        ("C:\\Users\\me\\Données.db", "c-users-me-donn-es"),
        ("日本語.db", "data"),
        ("---.db", "data"),
        ("x" * 100 + ".db", "x" * 60),
    ],
)
def test_the_database_name_is_a_url_safe_slug_of_the_file_stem(filename, name):
    assert database_name_for(filename) == name


@pytest.mark.parametrize(
    ("scheme", "domain", "port", "url"),
    [
        ("http", "localhost", "8000", "http://{id}.localhost:8000/"),
        (
            "https",
            "glasshouse-content.example",
            "",
            "https://{id}.glasshouse-content.example/",
        ),
    ],
)
def test_the_gallery_url_is_its_own_origin(settings, scheme, domain, port, url):
    settings.CONTENT_SCHEME, settings.CONTENT_DOMAIN, settings.CONTENT_PORT = (
        scheme,
        domain,
        port,
    )
    gallery = Gallery(title="t")
    assert gallery.url == url.format(id=gallery.id)


@pytest.fixture
def queued(gallery: Gallery) -> Build:
    return Build.objects.create(
        gallery=gallery,
        source_key="uploads/q/source.db",
        source_sha256="1" * 64,
        source_bytes=10,
    )


@pytest.mark.django_db
def test_set_state_records_start_and_finish_times_and_the_reason(queued):
    assert queued.set_state(BuildState.VALIDATING)
    started = queued.started_at
    assert started is not None and queued.finished_at is None
    assert queued.set_state(BuildState.FAILED, "The database has no tables.")
    queued.refresh_from_db()
    assert queued.state == BuildState.FAILED
    assert queued.started_at == started
    assert queued.finished_at is not None
    assert queued.failure_reason == "The database has no tables."


@pytest.mark.django_db
@pytest.mark.parametrize("final", FINAL_STATES)
def test_a_build_in_a_final_state_never_moves_again(queued, final):
    queued.set_state(final)
    assert queued.set_state(BuildState.BUNDLING) is False
    queued.refresh_from_db()
    assert queued.state == final


@pytest.mark.django_db
def test_set_state_refuses_an_unknown_state(queued):
    with pytest.raises(ValueError, match="unknown build state"):
        queued.set_state("exploded")


@pytest.mark.django_db
def test_set_state_does_not_overwrite_log_lines_written_by_someone_else(queued):
    Build.objects.get(pk=queued.pk).append_log("written by the worker")
    queued.set_state(BuildState.BUNDLING)
    queued.refresh_from_db()
    assert queued.log == "written by the worker\n"


@pytest.mark.django_db(transaction=True)
def test_concurrent_log_writers_never_lose_lines(gallery):
    build = Build.objects.create(
        gallery=gallery,
        source_key="uploads/c/source.db",
        source_sha256="2" * 64,
        source_bytes=1,
    )
    start = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            mine = Build.objects.get(pk=build.pk)
            start.wait()
            for i in range(25):
                mine.append_log(f"writer {n} line {i}")
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    build.refresh_from_db()
    lines = build.log.splitlines()
    assert len(lines) == 100
    assert {f"writer {n} line {i}" for n in range(4) for i in range(25)} == set(lines)
