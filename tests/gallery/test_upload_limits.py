"""Upload requests: the size cap while the body is read, one file per request, temporary files
always removed, and the messages a publisher gets (``gallery.upload_limits``).

The cap is 1 MB here. Requests go through Django's test client and, where what matters is the
bytes on the wire (no or a wrong ``Content-Length``, chunked encoding, a client that goes away
mid-body), over a real socket to pytest-django's live server.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from urllib3 import encode_multipart_formdata

from builder.storage import LocalStorage
from gallery import upload_limits
from gallery.models import FINAL_STATES, Build, BuildState, Gallery

PUBLISH = reverse("gallery:publish")
JSON = {"HTTP_ACCEPT": "application/json"}
LIMIT = 1024 * 1024
#: A CSRF secret sent as both cookie and form field: what a browser with the form page sends.
CSRF = "u" * 32
SQLITE_HEADER = b"SQLite format 3\x00"


class PeakRecordingHandler(upload_limits.CappedUploadHandler):
    """The real handler, recording the largest size its spooled file reached (bytes)."""

    peaks: ClassVar[list[int]] = []

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        result = super().receive_data_chunk(raw_data, start)
        self.peaks.append(self.file.tell())
        return result


@pytest.fixture(autouse=True)
def one_megabyte_limit(settings) -> None:
    settings.UPLOAD_MAX_BYTES = LIMIT


@pytest.fixture
def peak_spooled(settings) -> list[int]:
    """Sizes the spooled upload reached, in bytes, as the body was read."""
    PeakRecordingHandler.peaks = []
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.PeakRecordingHandler"]
    return PeakRecordingHandler.peaks


def oversized(name: str = "big.db") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, SQLITE_HEADER + b"\x00" * (LIMIT + 300 * 1024))


def assert_nothing_stored(storage: LocalStorage, sent_builds: list[str]) -> None:
    assert Gallery.objects.count() == 0 and Build.objects.count() == 0
    assert list(storage.keys("uploads/")) == []
    assert sent_builds == []


def spooled_files(settings) -> list[str]:
    return os.listdir(settings.FILE_UPLOAD_TEMP_DIR)


# --- The cap, while the body is read --------------------------------------------------------------


@pytest.mark.django_db
def test_a_file_over_the_limit_is_refused_while_it_is_read_and_the_form_keeps_what_was_typed(
    client, upload_data, storage, sent_builds, settings, peak_spooled
):
    data = upload_data(file=oversized(), title="My big one", description="Every row", plugins=["datasette-cluster-map"])
    response = client.post(PUBLISH, data)

    assert response.status_code == 413
    page = response.content.decode()
    assert "larger than the 1 MB limit, so it was not uploaded" in page
    assert "Remove tables or rows you do not need (then VACUUM)" in page
    assert 'value="My big one"' in page and "Every row</textarea>" in page
    assert 'value="datasette-cluster-map" checked' in page
    assert peak_spooled and max(peak_spooled) <= LIMIT, "never more than the cap on disk"
    assert spooled_files(settings) == []
    assert_nothing_stored(storage, sent_builds)


@pytest.mark.django_db
def test_a_file_over_the_limit_from_the_script_gets_a_413_json_error(client, upload_data, storage, sent_builds):
    response = client.post(PUBLISH, upload_data(file=oversized()), **JSON)
    assert response.status_code == 413
    assert response.json() == {"errors": {"file": [upload_limits.too_large_message()]}}
    assert_nothing_stored(storage, sent_builds)


@pytest.mark.django_db
def test_a_file_exactly_at_the_limit_is_accepted(client, upload_data, sqlite_bytes, sent_builds):
    padded = bytearray(sqlite_bytes + b"\x00" * (LIMIT - len(sqlite_bytes)))
    # The header's page count covers the padding: the upload's header check wants size = page size x pages.
    padded[28:32] = (LIMIT // int.from_bytes(padded[16:18], "big")).to_bytes(4, "big")
    exact = SimpleUploadedFile("exact.db", bytes(padded))
    response = client.post(PUBLISH, upload_data(file=exact))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Build.objects.get().source_bytes == LIMIT


@pytest.mark.django_db
def test_a_body_without_a_content_length_is_refused_with_what_to_do(client, upload_data, storage, sent_builds):
    response = client.post(PUBLISH, upload_data(), CONTENT_LENGTH="", **JSON)
    assert response.status_code == 411
    assert response.json() == {"errors": {"file": [upload_limits.LENGTH_REQUIRED_MESSAGE]}}
    assert_nothing_stored(storage, sent_builds)


# --- One file per request ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            lambda db: {"file": [SimpleUploadedFile("a.db", db), SimpleUploadedFile("b.db", db)]}, id="same field twice"
        ),
        pytest.param(lambda db: {"other": SimpleUploadedFile("b.db", db)}, id="another file field"),
    ],
)
@pytest.mark.parametrize("accept", [{}, JSON], ids=["form", "script"])
def test_a_request_with_two_files_is_refused_and_keeps_the_typed_fields(
    client, upload_data, sqlite_bytes, storage, sent_builds, settings, extra, accept
):
    response = client.post(PUBLISH, upload_data(**extra(sqlite_bytes), title="Two at once"), **accept)
    assert response.status_code == 400
    if accept:
        assert response.json()["errors"]["file"] == [upload_limits.ONE_FILE_MESSAGE]
    else:
        page = response.content.decode()
        assert "Upload one SQLite database at a time" in page
        assert 'value="Two at once"' in page
    assert spooled_files(settings) == []
    assert_nothing_stored(storage, sent_builds)


# --- Over a real socket: what the test client cannot send ------------------------------------------


def _multipart(file_bytes: bytes, **fields: str) -> tuple[bytes, str]:
    """A publish form body as a browser orders it (token, file, then the settings) and its content type."""
    parts: list[tuple[str, Any]] = [
        ("csrfmiddlewaretoken", CSRF),
        ("file", ("upload.db", file_bytes, "application/octet-stream")),
    ]
    defaults = {"title": "Over the wire", "visibility": "listed", "datasette_version": "0.65.5"}
    parts += list({**defaults, **fields}.items())
    return encode_multipart_formdata(parts)


class RawHTTP:
    """One HTTP/1.1 connection to the live server, written byte by byte."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = f"{parts.hostname}:{parts.port}"
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=20)

    def send_head(self, headers: dict[str, str], path: str = PUBLISH) -> None:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}", f"Cookie: csrftoken={CSRF}", "Accept: application/json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, bytes]:
        answer = http.client.HTTPResponse(self.sock)
        answer.begin()
        return answer.status, answer.read()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_http(live_server: Any, transactional_db: None) -> Iterator[Callable[[], RawHTTP]]:
    """``raw_http() -> RawHTTP``: new connections to the live server, closed after the test."""
    opened: list[RawHTTP] = []

    def connect() -> RawHTTP:
        opened.append(RawHTTP(live_server.url))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


def _chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("transfer", ["chunked", "no length, connection close"])
def test_an_oversized_body_without_a_content_length_is_refused_unread(
    raw_http, storage, sent_builds, settings, transfer
):
    body, content_type = _multipart(SQLITE_HEADER + b"\x00" * (2 * LIMIT))
    connection = raw_http()
    if transfer == "chunked":
        connection.send_head({"Content-Type": content_type, "Transfer-Encoding": "chunked"})
        connection.send(_chunked(body))
    else:
        connection.send_head({"Content-Type": content_type, "Connection": "close"})
        connection.send(body)
    status, answer = connection.response()
    assert status == 411
    assert upload_limits.LENGTH_REQUIRED_MESSAGE.encode() in answer
    assert spooled_files(settings) == []
    assert_nothing_stored(storage, sent_builds)


def test_a_content_length_that_lies_does_not_get_more_than_the_cap_onto_disk(
    raw_http, storage, sent_builds, settings, peak_spooled
):
    """The declared length is within the form allowance but leaves out the closing boundary,
    so Django reads a file part with no end: the handler still stops it at the cap."""
    body, content_type = _multipart(SQLITE_HEADER + b"\x00" * (LIMIT + 300 * 1024), description="kept")
    tail = body[body.rindex(b"\r\n--") :]
    connection = raw_http()
    connection.send_head({"Content-Type": content_type, "Content-Length": str(len(body) - len(tail))})
    connection.send(body)
    status, answer = connection.response()
    assert status == 413, answer[:2000]
    assert b"larger than the 1 MB limit" in answer
    assert peak_spooled and max(peak_spooled) <= LIMIT
    assert spooled_files(settings) == []
    assert_nothing_stored(storage, sent_builds)


# --- Temporary files are always removed -----------------------------------------------------------


@pytest.fixture
def temp_dirs(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders uploads could leave files in: ``FILE_UPLOAD_TEMP_DIR`` and this process's
    system temp folder (pointed at a folder of this test, so other processes' files do not count)."""
    system = tmp_path / "system-tmp"
    system.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    return [Path(settings.FILE_UPLOAD_TEMP_DIR), system]


def _count(folders: list[Path]) -> int:
    return sum(1 for folder in folders for _ in folder.rglob("*"))


def _wait_for_count(folders: list[Path], expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := _count(folders)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def _post(connection: RawHTTP, file_bytes: bytes) -> tuple[int, bytes]:
    body, content_type = _multipart(file_bytes)
    connection.send_head({"Content-Type": content_type, "Content-Length": str(len(body))})
    connection.send(body)
    return connection.response()


def _abort_mid_body(connection: RawHTTP, folders: list[Path], before: int) -> None:
    """Send half of a large body, wait until the server spools it, then go away."""
    body, content_type = _multipart(SQLITE_HEADER + b"\x00" * (LIMIT - 1024))
    connection.send_head({"Content-Type": content_type, "Content-Length": str(len(body))})
    connection.send(body[: len(body) // 2])
    assert _wait_for_count(folders, before + 1) == before + 1, "the server should be spooling the file"
    connection.close()


@pytest.mark.parametrize(
    "case", ["accepted", "bad header", "oversized", "aborted mid-body", "rate limited", "two files"]
)
def test_no_temporary_file_outlives_its_request(
    raw_http, sqlite_bytes, storage, sent_builds, settings, temp_dirs, case
):
    settings.UPLOAD_RATE_LIMIT = "1/h"
    before = _count(temp_dirs)
    if case == "accepted":
        assert _post(raw_http(), sqlite_bytes)[0] == 200
    elif case == "bad header":
        status, answer = _post(raw_http(), b"PK\x03\x04 a zip, not a database" + b"\x00" * 200_000)
        assert status == 400 and b"not a SQLite database" in answer
    elif case == "oversized":
        assert _post(raw_http(), SQLITE_HEADER + b"\x00" * (LIMIT + 200_000))[0] == 413
    elif case == "aborted mid-body":
        _abort_mid_body(raw_http(), temp_dirs, before)
    elif case == "rate limited":
        assert _post(raw_http(), sqlite_bytes)[0] == 200
        assert _post(raw_http(), sqlite_bytes)[0] == 429
    else:
        body, content_type = encode_multipart_formdata(
            [("csrfmiddlewaretoken", CSRF), ("file", ("a.db", sqlite_bytes)), ("file", ("b.db", sqlite_bytes)),
             ("title", "Two"), ("visibility", "listed"), ("datasette_version", "0.65.5")]
        )  # fmt: skip
        connection = raw_http()
        connection.send_head({"Content-Type": content_type, "Content-Length": str(len(body))})
        connection.send(body)
        assert connection.response()[0] == 400
    assert _wait_for_count(temp_dirs, before) == before, sorted(str(p) for d in temp_dirs for p in d.rglob("*"))


# --- The new-version form: same refusals ------------------------------------------------------------


@pytest.fixture
def held_link(client, gallery: Gallery, build: Build) -> str:
    """``gallery`` made an anonymous upload whose management link this ``client`` opened; returns the new-version URL."""
    from gallery.services import ownership

    Gallery.objects.filter(pk=gallery.pk).update(owner=None)
    token = ownership.new_management_token(gallery)
    assert client.get(reverse("gallery:manage-link", args=[gallery.pk, token])).status_code == 302
    return reverse("gallery:mine-new-version", args=[gallery.pk])


@pytest.mark.django_db
def test_the_new_version_form_refuses_a_body_declared_over_the_limit_before_reading_it(
    client, held_link, settings, peak_spooled
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post(held_link, {"file": oversized()})
    assert response.status_code == 413
    assert "The file is 1.3 MB, larger than the 1 MB limit" in response.content.decode()
    assert peak_spooled == [], "not a byte of the body was spooled"


@pytest.mark.django_db
def test_the_new_version_form_stops_a_file_over_the_limit_while_reading(client, held_link, settings, peak_spooled):
    response = client.post(held_link, {"file": oversized()})
    assert response.status_code == 413
    assert "larger than the 1 MB limit, so it was not uploaded" in response.content.decode()
    assert peak_spooled and max(peak_spooled) <= LIMIT


@pytest.mark.django_db
def test_the_new_version_form_takes_one_file(client, held_link, sqlite_bytes, gallery):
    files = [SimpleUploadedFile("a.db", sqlite_bytes), SimpleUploadedFile("b.db", sqlite_bytes)]
    response = client.post(held_link, {"file": files})
    assert response.status_code == 400
    assert "Upload one SQLite database at a time" in response.content.decode()
    assert gallery.builds.count() == 1


@pytest.mark.django_db
def test_a_management_link_holder_is_rate_limited_per_address(client, held_link, sqlite_bytes, gallery, settings):
    settings.UPLOAD_RATE_LIMIT = "2/h"

    def built() -> None:  # each version finishes building before the next (a gallery builds one at a time)
        gallery.builds.exclude(state__in=FINAL_STATES).update(state=BuildState.FAILED)

    for _ in range(2):
        assert client.post(held_link, {"file": SimpleUploadedFile("v.db", sqlite_bytes)}).status_code == 302
        built()
    response = client.post(held_link, {"file": SimpleUploadedFile("v.db", sqlite_bytes)})
    assert response.status_code == 429
    assert "Too many uploads from your address: the limit is 2 per hour." in response.content.decode()
    assert gallery.builds.count() == 3
    other = client.post(held_link, {"file": SimpleUploadedFile("v.db", sqlite_bytes)}, REMOTE_ADDR="198.51.100.4")
    assert other.status_code == 302


@pytest.mark.django_db
def test_the_new_version_form_still_checks_the_csrf_token(held_link, client, sqlite_bytes, gallery):
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    response = strict.post(held_link, {"file": SimpleUploadedFile("v.db", sqlite_bytes)})
    assert response.status_code == 403
    assert gallery.builds.count() == 1
