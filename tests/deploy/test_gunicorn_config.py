"""``deploy/gunicorn.conf.py``: its values, their environment overrides, and gunicorn running it.

The module is loaded as gunicorn loads it (a Python file executed with the environment);
``gunicorn --check-config`` then accepts it, and a real gunicorn started from it writes one
access line per request naming the request id.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "gunicorn.conf.py"
GUNICORN = [sys.executable, "-m", "gunicorn"]
OVERRIDES = (
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "FORWARDED_ALLOW_IPS",
    "BIND",
    "LOG_FORMAT",
)


def load_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """The config module's globals with only ``env`` among the variables it reads."""
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_workers_follow_the_cpu_count_with_threads_and_recycling(monkeypatch):
    config = load_config(monkeypatch)
    cpus = len(os.sched_getaffinity(0))
    assert config["worker_class"] == "gthread"
    assert config["workers"] == 2 * cpus
    assert config["threads"] == 4
    assert config["max_requests"] == 1000
    assert config["max_requests_jitter"] == 100
    assert config["timeout"] == 300
    assert config["graceful_timeout"] == 30
    assert config["accesslog"] == "-" and config["errorlog"] == "-"
    assert "request_id=%({x-request-id}o)s" in config["access_log_format"]
    assert config["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert config["bind"][0] == "127.0.0.1:8000"
    assert "logconfig_dict" not in config


def test_the_environment_overrides_each_value(monkeypatch):
    config = load_config(
        monkeypatch,
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="8",
        GUNICORN_MAX_REQUESTS="500",
        GUNICORN_TIMEOUT="60",
        GUNICORN_GRACEFUL_TIMEOUT="20",
        FORWARDED_ALLOW_IPS="10.0.0.5",
        BIND="0.0.0.0:8000",
    )
    assert (config["workers"], config["threads"]) == (3, 8)
    assert (config["max_requests"], config["max_requests_jitter"]) == (500, 50)
    assert (config["timeout"], config["graceful_timeout"]) == (60, 20)
    assert config["forwarded_allow_ips"] == "10.0.0.5"
    assert config["bind"] == ["0.0.0.0:8000"]


def test_a_bad_worker_count_stops_start_up_naming_the_variable(monkeypatch):
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY must be a positive integer, not 'many'"):
        load_config(monkeypatch, WEB_CONCURRENCY="many")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_gunicorn_accepts_the_config(tmp_path, log_format):
    env = {**os.environ, "LOG_FORMAT": log_format, "GLASSHOUSE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [*GUNICORN, "-c", str(CONFIG), "--check-config", "gallery.project.wsgi:application"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _get(url: str, request_id: str) -> str:
    """GET ``url`` with ``request_id``; return the answer's X-Request-ID (error statuses included)."""
    request = urllib.request.Request(url, headers={"X-Request-ID": request_id})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["X-Request-ID"]
    except urllib.error.HTTPError as exc:  # 404, 500, 503 still name the request
        return exc.headers["X-Request-ID"]


def _serve_requests(tmp_path: Path, log_format: str, requests: list[tuple[str, str]]) -> tuple[list[str], str]:
    """Start gunicorn from the config (1 worker), GET each ``(path, request id)`` in turn; return (the
    answers' X-Request-ID, everything gunicorn printed)."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "gallery.project.settings",
        "GLASSHOUSE_DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "LOG_FORMAT": log_format,
    }
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*GUNICORN, "-c", str(CONFIG), "gallery.project.wsgi:application"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    answered = []
    try:
        deadline = time.monotonic() + 30
        for path, request_id in requests:
            while True:
                try:
                    answered.append(_get(f"http://127.0.0.1:{port}{path}", request_id))
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        pytest.fail(f"gunicorn did not answer:\n{log_path.read_text()}")
                    time.sleep(0.2)
        time.sleep(0.5)  # the access line is written after the response
    finally:
        process.terminate()
        process.wait(30)
    return answered, log_path.read_text()


def _serve_one_request(tmp_path: Path, log_format: str, request_id: str) -> tuple[str, str]:
    """As ``_serve_requests`` with one GET of /healthz: (its X-Request-ID, gunicorn's output)."""
    answered, log = _serve_requests(tmp_path, log_format, [("/healthz", request_id)])
    return answered[0], log


@pytest.mark.slow
def test_each_access_line_names_the_request_id(tmp_path):
    answered, log = _serve_one_request(tmp_path, "text", "req-abc.123")
    assert answered == "req-abc.123"
    access = [line for line in log.splitlines() if "GET /healthz" in line]
    assert len(access) == 1 and "request_id=req-abc.123" in access[0], log


@pytest.mark.slow
def test_json_logs_are_one_object_per_line(tmp_path):
    answered, log = _serve_one_request(tmp_path, "json", "0123abcd")
    assert answered == "0123abcd"
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines, log
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert len(access) == 1 and access[0]["request_id"] == "0123abcd", log
    assert all(not line.strip() or line.startswith("{") for line in log.splitlines()), log


#: A management link's token (``secrets.token_urlsafe(32)``, as gallery.services makes them).
TOKEN = "Zq3vN8-_kP2mW7xR4tY9uB1cD6eF0gH5jL2nM8pQ3sT"


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_line_names_a_management_links_token(tmp_path, log_format):
    """The access lines and Django's request log (a 500: the folder has no tables; a 404) redact it."""
    link = f"/manage/abcdefghijkl/{TOKEN}/"
    answered, log = _serve_requests(
        tmp_path, log_format, [("/healthz", "ready"), (link, "link-500"), (link + "nope", "link-404")]
    )
    assert answered == ["ready", "link-500", "link-404"]
    assert TOKEN not in log and TOKEN[:12] not in log, log
    redacted = "/manage/abcdefghijkl/[redacted]/"
    if log_format == "json":
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        access = [line["message"] for line in lines if line["logger"] == "gunicorn.access"]
        django = [line for line in lines if line["logger"] == "django.request"]
        assert any(f"Internal Server Error: {redacted}" == line["message"] and "exc_info" in line for line in django)
    else:
        access = [line for line in log.splitlines() if "request_id=link-" in line]
        django = [line for line in log.splitlines() if " django.request " in line]
        assert any(line.endswith(f"Internal Server Error: {redacted}") for line in django), log
    assert len([line for line in access if f'"GET {redacted}' in line]) == 2, log
    assert any(f"Not Found: {redacted}nope" in str(line) for line in django), log
