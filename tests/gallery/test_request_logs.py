"""Every web log line names its request, and ``LOG_FORMAT`` chooses text or JSON lines.

The request id is the ``X-Request-ID`` nginx sends when it is well formed, else a new one;
it comes back in the response's ``X-Request-ID`` (which gunicorn's access line records, see
tests/deploy/test_gunicorn_config.py).
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from gallery.logs import ContextFilter, JsonLineFormatter, redact_secrets, use_context_on
from tests.support.fresh_process import run_python
from tests.support.loopback import free_port

#: A management link's token (``secrets.token_urlsafe(32)``); tests/deploy/test_gunicorn_config.py
#: checks gunicorn's lines, tests/gallery/test_nginx_example.py nginx's.
TOKEN = "Zq3vN8-_kP2mW7xR4tY9uB1cD6eF0gH5jL2nM8pQ3sT"


class Recorder(logging.Handler):
    """Keeps the records it is handed, after its filters ran."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def health_log():
    handler = Recorder()
    logger = logging.getLogger("gallery.health")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.django_db
def test_a_new_request_id_is_made_and_returned_when_the_request_has_none(client):
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert client.get("/healthz")["X-Request-ID"] != response["X-Request-ID"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("6f1c0e5e2b4a4e4f9d3c2b1a0f9e8d7c", True),
        ("req-1.2:3", True),
        ("has spaces", False),
        ('"quoted"', False),
        ("x" * 129, False),
    ],
    ids=["nginx", "token", "spaces", "quotes", "too-long"],
)
def test_a_well_formed_incoming_request_id_is_kept_and_others_replaced(client, sent, kept):
    returned = client.get("/healthz", HTTP_X_REQUEST_ID=sent)["X-Request-ID"]
    assert (returned == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", returned)


@pytest.mark.django_db
def test_lines_logged_while_a_request_runs_name_its_id(client, settings, health_log):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # the check logs a warning
    response = client.get("/healthz", HTTP_X_REQUEST_ID="probe-42")
    assert response.status_code == 503
    assert [r.request_id for r in health_log.records] == ["probe-42"]
    # Outside a request, lines say so.
    logging.getLogger("gallery.health").warning("outside")
    assert health_log.records[-1].request_id == "-"


def test_gallery_content_origins_get_a_request_id_too(client):
    response = client.get("/", HTTP_HOST="nosuchgallery.localhost", HTTP_X_REQUEST_ID="content-1")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "content-1"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_settings_log_format_shapes_each_line(tmp_path, log_format):
    code = "import django, logging; django.setup(); logging.getLogger('gallery.probe').warning('hello %s', 'there')"
    result = run_python(tmp_path, ["-c", code], LOG_FORMAT=log_format)
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip()
    if log_format == "json":
        record = json.loads(line)
        assert record["message"] == "hello there"
        assert (record["level"], record["logger"], record["request_id"], record["build_id"]) == (
            "WARNING", "gallery.probe", "-", "-",
        )  # fmt: skip
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", record["time"])
    else:
        assert line.endswith(" WARNING gallery.probe request_id=- build_id=- hello there")


def test_an_unknown_log_format_names_the_variable(tmp_path):
    result = run_python(tmp_path, ["-c", "import django; django.setup()"], LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json, not 'xml'" in result.stderr


def test_handlers_configured_elsewhere_get_the_ids_and_json_lines():
    """As on the Celery worker's handlers (``worker_shell.celery``): the filter, and JSON if asked."""
    logger = logging.getLogger("test.elsewhere")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        use_context_on(logger, "json")
        use_context_on(logger, "json")  # twice: still one filter
        assert sum(isinstance(f, ContextFilter) for f in handler.filters) == 1
        assert isinstance(handler.formatter, JsonLineFormatter)
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (f'"GET /manage/abcdefghijkl/{TOKEN}/ HTTP/1.1" 302', '"GET /manage/abcdefghijkl/[redacted]/ HTTP/1.1" 302'),
        (f"Not Found: /manage/abcdefghijkl/{TOKEN}/", "Not Found: /manage/abcdefghijkl/[redacted]/"),
        (f"https://glasshouse.example.org/manage/abcdefghijkl/{TOKEN}",
         "https://glasshouse.example.org/manage/abcdefghijkl/[redacted]"),
        (f"/accounts/login/?next=%2Fmanage%2Fabcdefghijkl%2F{TOKEN}%2F&x=1",
         "/accounts/login/?next=%2Fmanage%2Fabcdefghijkl%2F[redacted]%2F&x=1"),
        (f"/MANAGE/abcdefghijkl/%5A{TOKEN[1:]}/", "/MANAGE/abcdefghijkl/[redacted]/"),
        (f'{{"message": "<WSGIRequest: GET \'/manage/a/{TOKEN}/\'>", "q": "\\"/manage/a/{TOKEN}\\""}}',
         '{"message": "<WSGIRequest: GET \'/manage/a/[redacted]/\'>", "q": "\\"/manage/a/[redacted]\\""}'),
        ("/mine/abcdefghijkl/ and /manage/abcdefghijkl/", "/mine/abcdefghijkl/ and /manage/abcdefghijkl/"),
    ],
    ids=["access-line", "django-request", "url", "encoded-query", "case-and-escapes", "json", "no-token"],
)
def test_management_link_tokens_are_redacted_wherever_they_appear_in_a_line(line, redacted):
    assert redact_secrets(line) == redacted
    if line.startswith("{"):
        assert json.loads(redact_secrets(line))  # still one valid JSON object


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_djangos_own_request_log_redacts_management_links_under_debug_too(tmp_path, log_format):
    """With DEBUG, Django's default handlers would print "Not Found: <path>" to stderr as it is."""
    code = (
        "import django; django.setup(); from django.test import Client; "
        f"Client().get('/manage/abcdefghijkl/{TOKEN}/nope', HTTP_HOST='127.0.0.1')"
    )
    result = run_python(tmp_path, ["-c", code], DEBUG="true", LOG_FORMAT=log_format)
    assert result.returncode == 0, result.stderr
    assert "Not Found: /manage/abcdefghijkl/[redacted]/nope" in result.stderr
    assert TOKEN not in result.stderr
    assert result.stderr.count("Not Found:") == 1, result.stderr
