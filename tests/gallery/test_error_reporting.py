"""Error reporting to Sentry starts only when ``SENTRY_DSN`` is set, and then delivers events.

A stub HTTP server on loopback (``loopback_server``) stands in for Sentry's ingest endpoint: it
records what sentry-sdk posts to ``/api/<project>/envelope/``. Settings are imported in a fresh
interpreter, as a web or worker process starts.
"""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.support.fresh_process import run_python
from tests.support.loopback import LoopbackServer

#: An error line of the app, then a flush: sentry-sdk's logging integration reports ERROR lines.
PROBE = (
    "import django, logging, sentry_sdk; django.setup(); "
    "print('active' if sentry_sdk.get_client().is_active() else 'inactive'); "
    "logging.getLogger('gallery.probe').error('probe error for sentry'); sentry_sdk.flush(5)"
)


@pytest.fixture
def ingest(loopback_server: Callable[..., LoopbackServer]) -> tuple[str, list[tuple[str, bytes]]]:
    """``(host:port, received)``: a loopback server that answers 200 and records (path, body) of each POST."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            # sentry-sdk sends Brotli when the brotli package is installed (it is: builder uses it), else gzip.
            encoding = self.headers.get("Content-Encoding")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "br":
                import brotli  # only there when sentry-sdk found it

                body = brotli.decompress(body)
            received.append((self.path, body))
            self.send_response(200)
            self.end_headers()

    return loopback_server(Handler).address, received


def run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(tmp_path, ["-c", PROBE], **env)


def test_without_a_dsn_nothing_is_initialised_or_sent(tmp_path, ingest):
    _address, received = ingest
    result = run_probe(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "inactive"
    assert received == []


def test_with_a_dsn_error_lines_reach_the_endpoint_with_the_environment(tmp_path, ingest):
    address, received = ingest
    result = run_probe(tmp_path, SENTRY_DSN=f"http://publickey@{address}/42", SENTRY_ENVIRONMENT="staging")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "active"
    events = [body for path, body in received if path == "/api/42/envelope/"]
    assert events, received
    envelope = b"\n".join(events)
    assert b"probe error for sentry" in envelope
    assert b'"environment":"staging"' in envelope


def test_a_malformed_dsn_stops_start_up_naming_the_variable(tmp_path):
    result = run_probe(tmp_path, SENTRY_DSN="not-a-dsn")
    assert result.returncode != 0
    assert "SENTRY_DSN must be a Sentry DSN" in result.stderr


def test_a_bad_traces_rate_stops_start_up_naming_the_variable(tmp_path):
    result = run_probe(tmp_path, SENTRY_TRACES_SAMPLE_RATE="2")
    assert result.returncode != 0
    assert "SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1, not '2'" in result.stderr


#: A request to a management link that fails (no tables in the fresh data folder: a 500 with the
#: request's URL), and log lines naming the link, as breadcrumb and as event.
LINK_PROBE = (
    "import django, logging, sentry_sdk; django.setup(); from django.test import Client; "
    "link = '/manage/abcdefghijkl/{token}/'; "
    "Client(raise_request_exception=False).get(link, HTTP_HOST='127.0.0.1'); "
    "logging.getLogger('gallery.probe').warning('opened %s', link); "
    "logging.getLogger('gallery.probe').error('failed at http://127.0.0.1:8000%s', link); sentry_sdk.flush(5)"
)


def test_events_sent_to_sentry_never_name_a_management_links_token(tmp_path, ingest):
    address, received = ingest
    token = "Zq3vN8-_kP2mW7xR4tY9uB1cD6eF0gH5jL2nM8pQ3sT"
    result = run_python(tmp_path, ["-c", LINK_PROBE.format(token=token)], SENTRY_DSN=f"http://publickey@{address}/42")
    assert result.returncode == 0, result.stderr
    envelope = b"\n".join(body for path, body in received if path == "/api/42/envelope/")
    assert b"OperationalError" in envelope and b"failed at" in envelope and b"opened " in envelope, envelope[:2000]
    assert b"/manage/abcdefghijkl/[redacted]/" in envelope
    assert token.encode() not in envelope
    assert token.encode() not in result.stderr.encode(), result.stderr


#: What the Celery worker and beat load (``celery -A worker_shell.celery:app``), then an error line.
WORKER_PROBE = (
    "import logging, sentry_sdk, worker_shell.celery; client = sentry_sdk.get_client(); "
    "print(client.is_active(), 'celery' in client.integrations); "
    "logging.getLogger('worker_shell.probe').error('worker probe for sentry'); sentry_sdk.flush(5)"
)


def test_the_worker_process_reports_to_sentry_through_its_celery_integration(tmp_path, ingest):
    address, received = ingest
    result = run_python(tmp_path, ["-c", WORKER_PROBE], SENTRY_DSN=f"http://publickey@{address}/42")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
    envelope = b"\n".join(body for path, body in received if path == "/api/42/envelope/")
    assert b"worker probe for sentry" in envelope
