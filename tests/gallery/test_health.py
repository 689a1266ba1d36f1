"""``/healthz`` checks the database, the broker and the bundle store, each for real.

Faults are real ones: a broker URL on a port where nothing listens, a moto server stopped or
frozen (SIGSTOP: it holds connections without answering), a database server that is not there.
The answer is 200 when all three answer and 503 naming the failing one otherwise, within
``HEALTH_CHECK_TIMEOUT`` even when a server hangs.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.fresh_process import run_python
from tests.support.loopback import free_port


def get_health(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, json.loads(response.content)


@pytest.fixture
def redis_broker(settings) -> str:
    """The suite's Redis as this test's broker (the check pings it)."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test` (a real Redis)")
    settings.CELERY_BROKER_URL = url
    return url


@pytest.mark.django_db
def test_it_answers_200_when_database_broker_and_storage_answer(client, redis_broker):
    status, body = get_health(client)
    assert status == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert all(check["ok"] and isinstance(check["ms"], int) for check in body["checks"].values())


@pytest.mark.django_db
def test_a_broker_nobody_listens_on_makes_it_503(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    status, body = get_health(client)
    assert status == 503
    assert body["status"] == "fail"
    assert body["checks"]["broker"] == {"ok": False, "ms": body["checks"]["broker"]["ms"], "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]


@pytest.mark.django_db
@pytest.mark.integration
def test_a_stopped_s3_server_makes_it_503_naming_storage(client, redis_broker, private_s3):
    server, _bucket = private_s3
    status, body = get_health(client)
    assert status == 200, body
    server.stop()
    status, body = get_health(client)
    assert status == 503
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["storage"]["error"] == "StorageError"
    assert body["checks"]["broker"]["ok"] and body["checks"]["database"]["ok"]


@pytest.mark.django_db
@pytest.mark.integration
def test_a_hanging_s3_server_is_down_within_the_timeout_without_retries(client, redis_broker, private_s3, settings):
    server, _bucket = private_s3
    settings.HEALTH_CHECK_TIMEOUT = 1
    settings.STORAGE_RETRY_BUDGET = 60  # the store's own retries must not delay the probe
    assert get_health(client)[0] == 200
    server.freeze()
    try:
        started = time.monotonic()
        status, body = get_health(client)
        elapsed = time.monotonic() - started
    finally:
        server.thaw()
    assert status == 503 and body["checks"]["storage"]["ok"] is False
    assert elapsed < 5, f"the probe took {elapsed:.1f} s"


def test_a_database_server_that_is_not_there_makes_it_503(tmp_path):
    """In a fresh process, as a web node would start: PostgreSQL on a closed port, the embedded broker."""
    show = (
        "import json, django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz', HTTP_HOST='127.0.0.1'); print(r.status_code, r.content.decode())"
    )
    result = run_python(
        tmp_path, ["-c", show], DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/glasshouse"
    )
    assert result.returncode == 0, result.stderr
    status, _, body = result.stdout.strip().partition(" ")
    checks = json.loads(body)["checks"]
    assert status == "503"
    assert checks["database"]["ok"] is False and checks["database"]["error"] == "OperationalError"
    # The embedded filesystem broker and the local store are there.
    assert checks["broker"]["ok"] and checks["storage"]["ok"]
