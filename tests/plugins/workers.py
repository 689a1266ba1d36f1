"""Real ``celery worker`` processes for the tests, on ``REDIS_URL`` (the suite's own Redis database)
and pytest-django's PostgreSQL test database, which the test process and its workers share."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.plugins.suite import did_test_fail
from tests.support import REPO_ROOT

#: Seconds a Celery worker may take to print its "ready." line.
WORKER_READY_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def celery_broker_url() -> str:
    """``REDIS_URL``, the broker shared by the test process and its workers; flushed once per session.

    ``make test`` sets it to Redis database 15, the suite's own, so flushing it at
    the start drops stale messages from an earlier, interrupted run. Fails when
    ``REDIS_URL`` is unset: the embedded filesystem broker lives in the data folder,
    which the test process fixed at import.
    """
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test` (Redis database 15)")
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable ({exc}): run deploy/services.sh")
    finally:
        client.close()
    return url


def _database_url(db: dict[str, Any]) -> str:
    """A ``DATABASE_URL`` for the (test) database described by a Django ``settings_dict``."""
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail(
            f"a Celery worker needs a database it can share with the tests, not {db['ENGINE']}: "
            "run the suite with `make test` (DATABASE_URL=postgres://...)"
        )
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


@dataclass
class CeleryWorker:
    """A running ``celery worker`` process and its output (stdout and stderr, merged)."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader_alive: bool = True

    @property
    def log(self) -> str:
        """Everything the worker printed so far."""
        with self._changed:
            return "".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until a line matches the regex ``pattern``; return the match.

        E.g. ``worker.wait_for_log(r"Task worker_shell.tasks.build_gallery\\[.*\\] succeeded")``.
        Raises ``AssertionError`` with the log on timeout or if the worker exits.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f} s; log:\n{self.log}")
                if self.process.poll() is not None and not self._reader_alive:
                    raise AssertionError(f"worker exited with {self.process.returncode}; log:\n{self.log}")
                self._changed.wait(min(remaining, 0.5))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._reader_alive = False
            self._changed.notify_all()

    def pool_processes(self) -> list[int]:
        """Process ids of the worker's children: the prefork pool (which runs builds) when started
        without ``beat``; ``[]`` for the solo pool."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL after ``timeout`` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def celery_worker_factory(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    transactional_db: None,
    celery_broker_url: str,
    glasshouse_data_dir: Path,
    settings: Any,
) -> Iterator[Callable[..., CeleryWorker]]:
    """Start real Celery worker processes: ``celery_worker_factory(env=None, pool="solo", concurrency=1, beat=False) -> CeleryWorker``.

    Each runs ``python -m celery -A worker_shell.celery:app worker --pool=<pool>
    --concurrency=<concurrency> --loglevel=INFO`` from the repository root (``pool="prefork"``
    as in production: time limits and lost pool processes only exist there; ``beat=True`` adds
    ``-B``, the embedded scheduler of periodic tasks, with its state file in the data folder),
    with this process's environment plus:

    - ``DATABASE_URL``: pytest-django's *test* database (PostgreSQL only);
    - ``REDIS_URL``: ``celery_broker_url``;
    - ``GLASSHOUSE_DATA_DIR``: ``glasshouse_data_dir``; ``PYODIDE_RUNTIME_DIR`` and
      ``WHEEL_CACHE_DIR`` as in this process's settings;
    - ``S3_BUCKET``/``S3_ENDPOINT_URL``/``S3_REGION`` when the settings name a bucket
      (``s3_bucket``), ``CONTENT_*`` and ``GALLERY_AUTO_APPROVE`` from the settings;
    - then ``env``, the test's own additions, which win.

    Returns once the worker printed its "ready." line (at most 60 s; else the test
    fails with the worker's log). Requests ``transactional_db``: rows the test
    writes are committed, so the worker sees them. Every worker is stopped after
    the test, and its log printed if the test failed.
    """
    from django.db import connection

    workers: list[CeleryWorker] = []

    def start(
        env: dict[str, str] | None = None, pool: str = "solo", concurrency: int = 1, beat: bool = False
    ) -> CeleryWorker:
        full_env = dict(os.environ)
        full_env.update(
            {
                "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "gallery.project.settings"),
                "DATABASE_URL": _database_url(connection.settings_dict),
                "REDIS_URL": celery_broker_url,
                "GLASSHOUSE_DATA_DIR": str(glasshouse_data_dir),
                "PYODIDE_RUNTIME_DIR": str(settings.PYODIDE_RUNTIME_DIR),
                "WHEEL_CACHE_DIR": str(settings.WHEEL_CACHE_DIR),
                "CONTENT_DOMAIN": settings.CONTENT_DOMAIN,
                "CONTENT_SCHEME": settings.CONTENT_SCHEME,
                "CONTENT_PORT": str(settings.CONTENT_PORT),
                "GALLERY_AUTO_APPROVE": "true" if settings.GALLERY_AUTO_APPROVE else "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if settings.S3_BUCKET:
            full_env.update(
                {
                    "S3_BUCKET": settings.S3_BUCKET,
                    "S3_ENDPOINT_URL": settings.S3_ENDPOINT_URL,
                    "S3_REGION": settings.S3_REGION,
                }
            )
        full_env.update(env or {})
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "worker_shell.celery:app", "worker",
                f"--pool={pool}", f"--concurrency={concurrency}", "--loglevel=INFO",
                f"--hostname=test{len(workers) + 1}-{os.getpid()}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                *(["-B", f"--schedule={glasshouse_data_dir / f'beat-{len(workers) + 1}'}"] if beat else []),
            ],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )  # fmt: skip
        worker = CeleryWorker(process=process, env=full_env)
        workers.append(worker)
        threading.Thread(target=worker._read, name="celery-worker-log", daemon=True).start()
        try:
            worker.wait_for_log(r"\bready\.\s*$", timeout=WORKER_READY_TIMEOUT)
        except AssertionError as exc:
            worker.stop()
            pytest.fail(f"Celery worker did not become ready: {exc}")
        return worker

    yield start

    for number, worker in enumerate(workers, 1):
        worker.stop()
        if did_test_fail(request):
            print(f"\n----- Celery worker {number} log (exit {worker.process.returncode}) -----\n{worker.log}")


@pytest.fixture
def celery_worker(request: pytest.FixtureRequest, celery_worker_factory: Callable[..., CeleryWorker]) -> CeleryWorker:
    """One real Celery worker with the default environment (see ``celery_worker_factory``).

    Fixtures that change what the worker must be told (``s3_bucket``,
    ``live_gallery_server``) are set up first when the test uses them, whatever
    the order of the test's arguments.
    """
    for name in ("s3_bucket", "live_gallery_server"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    return celery_worker_factory()
