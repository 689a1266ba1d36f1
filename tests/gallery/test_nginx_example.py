"""``deploy/nginx/`` is valid, and its app server does what the upload limits rely on.

Debian's nginx runs the files as written, except for what a test machine must change: its
TLS files and data folder point into ``tmp_path``, it listens on free loopback ports, and its
upstream is the live server. Then, through nginx: a chunked upload reaches Django with a
Content-Length (request buffering), a body over the cap is refused by nginx with the publish
page's JSON, and the client address Django counts is the one nginx saw, whatever the client
claims in ``X-Real-IP`` or ``X-Forwarded-For``. No line nginx logs names a management link's
token: neither the access log (request line, Referer) nor the error log.
"""

from __future__ import annotations

import http.client
import re
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from urllib3 import encode_multipart_formdata

from builder.sqlite_check import format_megabytes
from tests.support.loopback import free_port
from tests.support.nginx import Nginx as RenderedNginx
from tests.support.nginx import find_nginx, render_deploy_config, running_nginx

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "nginx" / "app.conf"
APP_HOST = "glasshouse.example.org"
CSRF = "n" * 32


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Debian's nginx; fails (never skips) with what to install when it is missing."""
    return find_nginx()


@dataclass(frozen=True)
class Nginx:
    """deploy/nginx/ rendered for this machine; ``https_port`` serves its 443 servers."""

    rendered: RenderedNginx
    https_port: int

    @property
    def prefix(self) -> Path:
        return self.rendered.prefix

    def command(self, *args: str) -> list[str]:
        return self.rendered.command(*args)


def render_example(binary: str, folder: Path, upstream_port: int) -> Nginx:
    """Write deploy/nginx/, wrapped in a minimal main context, with this machine's paths and ports."""
    https_port, http_port = free_port(), free_port()
    rendered = render_deploy_config(
        binary,
        folder,
        [
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
            ("listen 443 ", f"listen 127.0.0.1:{https_port} "),
            ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ],
    )
    return Nginx(rendered=rendered, https_port=https_port)


@pytest.mark.integration
def test_the_example_is_a_valid_nginx_config(nginx_binary, tmp_path):
    nginx = render_example(nginx_binary, tmp_path, upstream_port=8000)
    result = subprocess.run(nginx.command("-t"), capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_the_examples_upload_cap_is_djangos(settings):
    text = EXAMPLE.read_text()
    block = text[text.index("location ~ ^/(publish|") :]
    cap = int(re.search(r"client_max_body_size (\d+);", block).group(1))
    assert cap == settings.UPLOAD_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert f"larger than the {format_megabytes(settings.UPLOAD_MAX_BYTES)} limit" in block
    assert re.search(r"^\s*proxy_request_buffering on;", text, re.MULTILINE)
    assert re.search(r"^\s*proxy_set_header X-Real-IP \$remote_addr;", text, re.MULTILINE)


@pytest.fixture
def nginx(nginx_binary, tmp_path, live_server: Any, transactional_db: None, settings) -> Iterator[Nginx]:
    """deploy/nginx/ running in front of the live server (``Host: glasshouse.example.org``)."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, APP_HOST]
    rendered = render_example(nginx_binary, tmp_path / "nginx", upstream_port=urlsplit(live_server.url).port)
    with running_nginx(rendered.rendered):
        yield rendered


def _connection(nginx: Nginx) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        "127.0.0.1", nginx.https_port, context=ssl._create_unverified_context(), timeout=30
    )


def _post(nginx: Nginx, body: Any, content_type: str, *, chunked: bool = False, **headers: str) -> tuple[int, bytes]:
    connection = _connection(nginx)
    all_headers = {
        "Host": APP_HOST,
        "Content-Type": content_type,
        "Cookie": f"csrftoken={CSRF}",
        "Accept": "application/json",
        **headers,
    }
    connection.request("POST", "/publish/", body=body, headers=all_headers, encode_chunked=chunked)
    response = connection.getresponse()
    return response.status, response.read()


def _form(sqlite_bytes: bytes) -> tuple[bytes, str]:
    return encode_multipart_formdata(
        [("csrfmiddlewaretoken", CSRF), ("file", ("chinook.db", sqlite_bytes)), ("title", "Through nginx"),
         ("visibility", "listed"), ("datasette_version", "0.65.5")]
    )  # fmt: skip


@pytest.mark.integration
def test_a_chunked_upload_reaches_django_whole_through_nginx(nginx, make_sqlite, sent_builds):
    """Larger than nginx's body buffer (128k), so nginx could not just have held it all anyway."""
    database = make_sqlite("chunked.db")
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE blob (data BLOB)")
        conn.execute("INSERT INTO blob VALUES (zeroblob(600000))")
    conn.close()
    body, content_type = _form(database.read_bytes())
    pieces = [body[i : i + 16384] for i in range(0, len(body), 16384)]
    status, answer = _post(nginx, iter(pieces), content_type, chunked=True)
    assert status == 200, answer[:2000]
    assert b'"redirect": "/builds/' in answer
    assert len(sent_builds) == 1


@pytest.mark.integration
def test_nginx_refuses_a_body_over_the_cap_with_the_publish_pages_json(nginx, settings):
    connection = _connection(nginx)
    too_big = settings.UPLOAD_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    connection.putrequest("POST", "/publish/", skip_host=True)
    for name, value in {
        "Host": APP_HOST,
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(too_big),
    }.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert b"larger than the 100 MB limit" in response.read()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("meta_key", "claim"),
    [("HTTP_X_REAL_IP", "X-Real-IP"), ("HTTP_X_FORWARDED_FOR", "X-Forwarded-For")],
)
def test_the_address_django_limits_is_the_one_nginx_saw_not_the_clients_claim(
    nginx, sqlite_bytes, settings, meta_key, claim
):
    settings.CLIENT_IP_META_KEY = meta_key
    settings.UPLOAD_RATE_LIMIT = "1/h"
    body, content_type = _form(sqlite_bytes)
    assert _post(nginx, body, content_type, **{claim: "203.0.113.1"})[0] == 200
    status, answer = _post(nginx, body, content_type, **{claim: "203.0.113.2"})
    assert status == 429, answer[:2000]


#: A management link's token (``secrets.token_urlsafe(32)``).
TOKEN = "Zq3vN8-_kP2mW7xR4tY9uB1cD6eF0gH5jL2nM8pQ3sT"
LINK = f"/manage/abcdefghijkl/{TOKEN}/"


def _get(nginx: Nginx, path: str, **headers: str) -> int:
    connection = _connection(nginx)
    connection.request("GET", path, headers={"Host": APP_HOST, **headers})
    response = connection.getresponse()
    response.read()
    return response.status


def _log_lines(path: Path, count: int) -> list[str]:
    """The lines of log ``path`` once it has ``count`` of them (nginx writes after the answer; 5 s at most)."""
    deadline = time.monotonic() + 5
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.integration
def test_the_access_log_redacts_management_link_tokens(nginx):
    assert _get(nginx, LINK) == 404  # no such gallery; the line is written all the same
    assert _get(nginx, f"/accounts/login/?next=%2Fmanage%2Fabcdefghijkl%2F{TOKEN}%2F") == 200
    assert _get(nginx, "/healthz", Referer=f"https://{APP_HOST}{LINK}") in (200, 503)
    lines = _log_lines(nginx.prefix / "access.log", 3)
    assert len(lines) == 3, lines
    assert not [line for line in lines if TOKEN in line], lines
    assert '"GET /manage/abcdefghijkl/[redacted]/ HTTP/1.1" 404 ' in lines[0]
    assert '"GET /accounts/login/?next=%2Fmanage%2Fabcdefghijkl%2F[redacted]%2F HTTP/1.1" 200 ' in lines[1]
    assert f'"https://{APP_HOST}/manage/abcdefghijkl/[redacted]/"' in lines[2]


@pytest.mark.integration
def test_the_error_log_never_names_a_management_link(nginx_binary, tmp_path):
    """With gunicorn down, nginx logs each failed request with its request line: not a management link's."""
    rendered = render_example(nginx_binary, tmp_path / "nginx", upstream_port=free_port())
    with running_nginx(rendered.rendered):
        assert _get(rendered, LINK) == 502
        assert _get(rendered, "/healthz") == 502
        assert _log_lines(rendered.prefix / "access.log", 2)
    errors = rendered.rendered.error_log
    assert 'connect() failed (111: Connection refused) while connecting to upstream' in errors
    assert 'request: "GET /healthz HTTP/1.1"' in errors, "the error log shows other failed requests"
    assert TOKEN not in errors and "/manage/" not in errors, errors
