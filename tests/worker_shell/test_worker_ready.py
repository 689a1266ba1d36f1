"""``manage.py worker_ready``, the readiness probe of a build worker, against a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.utils.nodenames import host_format

from tests.support.loopback import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]


def _worker_ready(worker, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "worker_ready", "--name", name, "--timeout", "3", *extra],
        cwd=REPO, env=worker.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_worker_ready_succeeds_for_a_running_worker_and_fails_once_it_stopped(celery_worker) -> None:
    name = host_format(f"test1-{os.getpid()}@%h")
    ready = _worker_ready(celery_worker, name)
    assert ready.returncode == 0, ready.stderr
    assert ready.stdout.strip() == f"ready: {name} consumes celery"

    celery_worker.stop()
    gone = _worker_ready(celery_worker, name)
    assert gone.returncode == 1
    assert f"worker {name} did not answer a ping within 3 s: is it running?" in gone.stderr


def test_worker_ready_says_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: a broker that is down
    env = {**os.environ, "GLASSHOUSE_DATA_DIR": str(tmp_path), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "worker_ready", "--timeout", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "the broker could not be reached" in result.stderr and "REDIS_URL" in result.stderr
