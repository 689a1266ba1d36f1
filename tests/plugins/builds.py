"""Fixtures shared by every Glasshouse test: real browser, real S3 API, real Celery worker.

The suite talks to real servers wherever a user would (DESIGN.md, "Configuration"):

- Debian's Chromium, driven by Playwright (``chromium_path``, ``browser``, ``page``);
- moto's S3 server as a separate process, reached by boto3 over HTTP (``moto_s3``, ``s3_bucket``);
- a real ``celery worker`` process (``celery_worker_factory``, ``celery_worker``), with
  PostgreSQL (``DATABASE_URL``) and Redis (``REDIS_URL``) as ``make test`` sets them;
- pytest-django's ``live_server`` as the app origin and, through ``<id>.localhost``,
  every gallery's content origin (``live_gallery_server``).

``make test`` installs Chromium, starts PostgreSQL and Redis, and sets the variables.
Fixtures that need something missing fail with a message saying what to run; none skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.support.chromium import CHROMIUM_ARGS
from tests.support.process_wait import wait_http as _wait_http

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Seconds a Celery worker may take to print its "ready." line.
WORKER_READY_TIMEOUT = 60.0


def _own_redis_database_per_xdist_worker() -> None:
    """Under pytest-xdist (``make test`` runs ``-n 4``), give worker ``gwN`` Redis database ``D - N``.

    ``D`` is the database of ``REDIS_URL`` (15 in ``make test``). Each xdist worker has its own
    test database (pytest-django's ``_gwN`` suffix) and starts its own Celery workers; on one
    broker queue, one process's Celery worker would take the other's builds and find no such
    row. pytest-django loaded the settings before this file, so the settings that came from
    ``REDIS_URL`` (the broker, the rate-limit cache) are moved here, before anything connects.
    Without xdist, or with no ``REDIS_URL``, nothing changes.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    base = os.environ.get("REDIS_URL", "")
    if not (worker.startswith("gw") and base):
        return
    parts = urlsplit(base)
    database = int(parts.path.strip("/") or 0) - int(worker[2:])
    if database < 0:
        raise pytest.UsageError(f"REDIS_URL {base} leaves no Redis database for xdist worker {worker}")
    url = parts._replace(path=f"/{database}").geturl()
    os.environ["REDIS_URL"] = url
    from django.conf import settings

    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    if "LOCATION" in settings.CACHES["default"]:
        settings.CACHES["default"]["LOCATION"] = url
    from worker_shell.celery import app

    app.conf.broker_url = url


_own_redis_database_per_xdist_worker()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives Debian's Chromium against a live server")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    # Keep each phase's report on the item, so fixtures can tell at teardown
    # whether their test failed (and print a worker's log only then).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )


def _free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Password hashing ---------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Hash the tests' passwords with MD5 first: the production hasher (PBKDF2, 1.2 million rounds)
    takes 0.5-4 s a hash on this machine, and the suite makes and checks hundreds of them.

    Only the test process (its ``client`` and ``live_server``) makes and checks these hashes.
    The production hashers stay in the list after it, so a hash any of them made still checks.
    """
    from django.conf import settings
    from django.test.utils import override_settings

    override = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]
    )
    override.enable()
    try:
        yield
    finally:
        override.disable()


# --- Paths --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (where ``manage.py`` is)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``: sample SQLite databases shared by the team (chinook, fixtures).

    Fails (never skips) when the folder is missing: CI clones the repo with
    ``shared/`` beside it, so a missing folder is a broken checkout.
    """
    path = (REPO_ROOT.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} is missing: check out shared/ beside the repository")
    return path


@pytest.fixture
def glasshouse_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    """A fresh data folder for this test, used by the test process and by workers it starts.

    Sets ``GLASSHOUSE_DATA_DIR`` in the environment (``celery_worker_factory``
    passes it on) and overrides the settings that ``gallery.project.settings`` derived from
    it at import: ``DATA_DIR``, ``LOCAL_STORAGE_ROOT`` (local bundle store; the
    cached store is rebuilt through ``setting_changed``) and ``FILE_UPLOAD_TEMP_DIR``.
    ``PYODIDE_RUNTIME_DIR`` and ``WHEEL_CACHE_DIR`` keep pointing at the
    repository's shared copies (``make runtime`` fills the first), so no test
    downloads them again.
    """
    data_dir = tmp_path / "data"
    (data_dir / "tmp").mkdir(parents=True)
    monkeypatch.setenv("GLASSHOUSE_DATA_DIR", str(data_dir))
    settings.DATA_DIR = data_dir
    settings.LOCAL_STORAGE_ROOT = data_dir / "storage"
    settings.FILE_UPLOAD_TEMP_DIR = str(data_dir / "tmp")
    return data_dir


@pytest.fixture
def make_sqlite(tmp_path: Path) -> Callable[[str], Path]:
    """``make_sqlite(name="chinook.db") -> Path``: a small valid SQLite database (one table, two rows) in ``tmp_path``."""

    def make(name: str = "chinook.db") -> Path:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT)")
        conn.executemany(
            "INSERT INTO album (title) VALUES (?)", [("Blue",), ("Kind of Blue",)]
        )
        conn.commit()
        conn.close()
        return path

    return make



# --- Browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Absolute path of Debian's Chromium (``shutil.which("chromium")``); fails if it is absent."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Chromium is not installed: run `make test` (it installs Debian's chromium) "
            "or, as root, `apt-get install chromium`. Never `playwright install`."
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str, playwright_driver: Any) -> Iterator[Any]:
    """A headless Chromium (Playwright sync API ``Browser``), shared by the whole session.

    Launched from ``chromium_path`` with ``CHROMIUM_ARGS``. While it runs,
    ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set: Playwright's sync API keeps an asyncio
    loop on the test thread, and Django would otherwise refuse ORM calls made by
    the test itself (the live server runs in its own thread and is unaffected).
    """
    yield from _launch_chromium(playwright_driver, chromium_path, CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    """Playwright's sync API (``Playwright``), one per session: a second one cannot start beside it.

    While it runs, ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set (see ``browser``).
    """
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            yield playwright


def _launch_chromium(playwright: Any, chromium_path: str, args: list[str]) -> Iterator[Any]:
    """Launch headless Chromium with ``args``, yield the ``Browser``, close it (see ``browser``)."""
    chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=args)
    try:
        yield chromium
    finally:
        chromium.close()


def playwright_disabled_features() -> list[str]:
    """The ``--disable-features`` list Playwright passes to Chromium, read from the installed driver.

    Parsed from ``chromiumSwitches`` in the driver package (``disabledFeatures = [...]``), so
    a Playwright upgrade changes it here too. Fails if the list cannot be found.
    """
    import playwright

    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for source in (lib / "coreBundle.js", lib / "server" / "chromium" / "chromiumSwitches.js"):
        if source.is_file():
            match = re.search(r"disabledFeatures = \[(.*?)\]", source.read_text(), re.DOTALL)
            if match:
                return re.findall(r'^\s*"([^"]+)"', match.group(1), re.MULTILINE)
    pytest.fail(f"Playwright's disabledFeatures list was not found under {lib}: update playwright_disabled_features()")


@pytest.fixture(scope="session")
def partitioned_browser(chromium_path: str, playwright_driver: Any) -> Iterator[Any]:
    """A headless Chromium that treats cross-site iframes as current browsers do (storage partitioned).

    Playwright disables ``ThirdPartyStoragePartitioning``, and Chromium then refuses a cross-site
    iframe every storage API (no Service Worker in an embed). A second ``--disable-features=``
    with Playwright's own list minus that feature wins over Playwright's (the last flag counts).
    Otherwise as ``browser``.
    """
    features = playwright_disabled_features()
    assert "ThirdPartyStoragePartitioning" in features, features
    kept = ",".join(name for name in features if name != "ThirdPartyStoragePartitioning")
    yield from _launch_chromium(playwright_driver, chromium_path, [*CHROMIUM_ARGS, f"--disable-features={kept}"])


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A Playwright ``Page`` in a fresh browser context (own cookies, storage, Service Workers).

    The context is closed after the test. Default timeout: 30 s.
    """
    context = browser.new_context()
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


# --- Live server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveGalleryServer:
    """The live server as both origins: ``url`` is the app origin (``http://127.0.0.1:<port>``, pytest.ini's
    ``--liveserver``), ``gallery_url(id)`` a content origin."""

    url: str
    port: int

    def gallery_url(self, gallery_id: str, path: str = "/") -> str:
        """``http://<gallery_id>.localhost:<port><path>``: what the app itself links to."""
        return f"http://{gallery_id}.localhost:{self.port}{path}"


@pytest.fixture
def live_gallery_server(live_server: Any, settings: Any) -> LiveGalleryServer:
    """pytest-django's ``live_server``, with gallery URLs pointing at it.

    Sets ``CONTENT_DOMAIN = "localhost"``, ``CONTENT_SCHEME = "http"`` and
    ``CONTENT_PORT`` = the live server's port (and the app's ``SECURE_CSP`` to match), so ``http://<id>.localhost:<port>/``
    reaches the same server, whose ``ContentOriginMiddleware`` serves the gallery.
    Chromium resolves ``*.localhost`` to loopback by itself. Implies transactional
    database access (through ``live_server``).
    """
    port = urlsplit(live_server.url).port
    assert port is not None, live_server.url
    settings.CONTENT_DOMAIN = "localhost"
    settings.CONTENT_SCHEME = "http"
    settings.CONTENT_PORT = str(port)
    # The app's CSP names the gallery origins (their port included) for frames and images.
    from gallery.project.settings.web import app_csp, content_origins_source

    settings.SECURE_CSP = app_csp(content_origins_source("http", "localhost", str(port)))
    return LiveGalleryServer(url=live_server.url, port=port)


# --- S3 (moto server) --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:<port>``) of moto's S3 server, one process per session.

    Started as ``python -m moto.server -H 127.0.0.1 -p <free port>`` and waited for
    over HTTP (30 s at most, else the test fails with the server's log). Prefer
    ``moto_s3``, which also sets dummy AWS credentials for the test.
    """
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{endpoint}/moto-api/", process, 30, "moto server", log_path)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def moto_s3(moto_s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Endpoint URL of moto's S3 server, with dummy AWS credentials set for this test.

    Sets ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` = ``testing``,
    ``AWS_DEFAULT_REGION`` = ``us-east-1``, and points the AWS config files at
    ``/dev/null`` so no real profile is read. Workers started during the test
    inherit them. Buckets persist for the session: use unique names (``s3_bucket``).
    """
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    return moto_s3_server


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on the moto server; ``env`` holds the variables a worker needs to use it."""

    name: str
    endpoint_url: str
    region: str

    @property
    def env(self) -> dict[str, str]:
        return {"S3_BUCKET": self.name, "S3_ENDPOINT_URL": self.endpoint_url, "S3_REGION": self.region}

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint, to look at what a build wrote."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)


@pytest.fixture
def s3_bucket(moto_s3: str, settings: Any) -> S3Bucket:
    """A new, empty bucket on moto's server, made the store of this test.

    Overrides ``S3_BUCKET``, ``S3_ENDPOINT_URL`` and ``S3_REGION`` (``gallery.storage``
    rebuilds its cached store), and ``celery_worker_factory`` passes them to workers.
    """
    bucket = S3Bucket(name=f"glasshouse-test-{secrets.token_hex(6)}", endpoint_url=moto_s3, region="us-east-1")
    bucket.client().create_bucket(Bucket=bucket.name)
    settings.S3_BUCKET = bucket.name
    settings.S3_ENDPOINT_URL = bucket.endpoint_url
    settings.S3_REGION = bucket.region
    return bucket


@dataclass
class PrivateServer:
    """A server process of this test only (Redis or moto), which the test may stop, freeze and restart."""

    command: list[str]
    port: int
    log_path: Path
    ready: Callable[[PrivateServer], None]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.ready(self)

    def stop(self) -> None:
        """Stop the server for good (SIGTERM, then SIGKILL): its in-memory state is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its state and its port but answers nothing (connections hang)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen server answers again, with its state intact."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateServer]:
    """A Redis server of this test only (``/usr/bin/redis-server`` on a free port), without persistence.

    ``stop()`` then ``start()`` is a broker restart that loses every message; ``url`` is
    ``redis://127.0.0.1:<port>/0``. Never touches the machine's Redis on 6379.
    """
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()

    def ready(server: PrivateServer) -> None:
        import redis

        client = redis.Redis(port=server.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or (server.process and server.process.poll() is not None):
                    pytest.fail(f"private redis-server did not start:\n{server.log_path.read_text()}")
                time.sleep(0.1)
            finally:
                client.close()

    server = PrivateServer(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        port, tmp_path / "redis.log", ready,
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_s3(moto_s3: str, tmp_path: Path, settings: Any) -> Iterator[tuple[PrivateServer, S3Bucket]]:
    """A moto S3 server of this test only, with one bucket made the store of this test (as ``s3_bucket``).

    Returns ``(server, bucket)``: ``server.freeze()``/``thaw()`` make the store hang and come back
    with its objects (moto keeps them in memory, so a restart would lose them). Dummy credentials
    come from ``moto_s3``; ``celery_worker_factory`` passes the bucket's settings to workers.
    """
    port = _free_port()

    def ready(server: PrivateServer) -> None:
        assert server.process is not None
        _wait_http(f"http://127.0.0.1:{server.port}/moto-api/", server.process, 30, "moto server", server.log_path)

    server = PrivateServer(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, tmp_path / "moto.log", ready
    )
    server.start()
    bucket = S3Bucket(name=f"glasshouse-test-{secrets.token_hex(6)}", endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1")
    try:
        bucket.client().create_bucket(Bucket=bucket.name)
        settings.S3_BUCKET = bucket.name
        settings.S3_ENDPOINT_URL = bucket.endpoint_url
        settings.S3_REGION = bucket.region
        yield server, bucket
    finally:
        server.stop()


# --- Celery worker --------------------------------------------------------------------------


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
        if _test_failed(request):
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


# --- Shared galleries: one real build per (database, plugins, Datasette version) per session ---


@dataclass(frozen=True)
class Prebuilt:
    """A bundle the real builder wrote once this session, ready to be attached to Gallery rows."""

    build_id: str
    database: Path
    database_name: str
    plugins: tuple[str, ...]
    datasette_version: str
    metadata: dict[str, Any]
    source_key: str
    source_sha256: str
    bundle_bytes: int
    manifest: dict[str, Any]
    log: str


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local bundle store that lives for the whole session (``LocalStorage`` root)."""
    return tmp_path_factory.mktemp("shared-store")


def _run_common_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every process of this pytest run sees: the xdist workers' common temporary root
    (their own roots are ``popen-gwN`` in it), or this process's own root without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _link_missing(source: Path, target: Path) -> None:
    """Hard-link every file under ``source`` that ``target`` lacks, at the same relative path.

    Safe for stores: ``LocalStorage`` writes a new file and renames it over the old one, so a
    write never goes through a link, and the files it shares between builds are content-addressed.
    """
    for folder, _dirs, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (target / relative / name).exists():
                os.link(Path(folder) / name, target / relative / name)


@pytest.fixture(scope="session")
def prebuilt_bundle(shared_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Prebuilt]:
    """``prebuilt_bundle(database, plugins=(), datasette_version=default, metadata=None) -> Prebuilt``.

    Runs ``builder.director.BuildDirector`` (with its Node check) the first time a combination is
    asked for in this pytest run, and returns the same ``Prebuilt`` after that, so browser tests
    share builds instead of repeating them. A combination is the database's bytes and file name,
    the plugins, the Datasette version and the metadata.

    Under pytest-xdist the processes share the builds too: the first to ask builds into a store
    under the run's common folder (``_run_common_dir``), holding that combination's file lock so
    the other process waits for it instead of building the same thing, and writes the build's
    facts (``<key digest>.json``) last. Every process then gets the files hard-linked into its
    own ``shared_store`` (a test that takes a gallery down removes its build's files from that
    process's store only), and ``restore`` copies a build's own files back from the common store.
    The database name in URLs comes from the file name (``database_name_for``).
    """
    import hashlib
    import json

    from django.conf import settings as django_settings

    from builder.catalog import DEFAULT_DATASETTE_VERSION
    from builder.director import BuildDirector, BuildRequest
    from builder.storage import LocalStorage
    from builder.wheels import cache_lock
    from gallery.models import database_name_for, new_build_id

    built: dict[str, Prebuilt] = {}
    common = _run_common_dir(tmp_path_factory) / "prebuilt-bundles"
    pristine = common / "store"  # every build's files, never served: tests use shared_store
    pristine.mkdir(parents=True, exist_ok=True)

    def restore(bundle: Prebuilt) -> None:
        # A test that rejects, takes down or deletes its gallery removes these from shared_store
        # (removal.remove_build_files); the next test gets them back.
        for prefix in (f"builds/{bundle.build_id}", f"uploads/{bundle.build_id}"):
            if not (shared_store / prefix).exists():
                shutil.copytree(pristine / prefix, shared_store / prefix)

    def build(database: Path, sha256: str, plugins: tuple[str, ...], version: str, metadata: dict, root: Path) -> dict:
        build_id = new_build_id()
        name = database_name_for(database.name)
        source_key = f"uploads/{build_id}/source.db"
        store = LocalStorage(root)
        store.put_file(source_key, database)
        log: list[str] = []
        result = BuildDirector(
            BuildRequest(
                build_id=build_id,
                database_path=database,
                database_name=name,
                title=f"Shared {database.name}",
                description=f"{database.name}, built once for the test session",
                plugins=plugins,
                datasette_version=version,
                source_sha256=sha256,
                pyodide_version=django_settings.PYODIDE_VERSION,
                metadata=metadata,
                runtime_dir=Path(django_settings.PYODIDE_RUNTIME_DIR),
                cache_dir=Path(django_settings.WHEEL_CACHE_DIR),
            ),
            storage=store,
            on_state=lambda state: None,
            log=log.append,
        ).run()
        return {
            "build_id": build_id, "database_name": name, "source_key": source_key,
            "bundle_bytes": result.bundle_bytes, "manifest": result.manifest.to_dict(), "log": "\n".join(log) + "\n",
        }  # fmt: skip

    def get(
        database: Path,
        plugins: tuple[str, ...] = (),
        datasette_version: str = DEFAULT_DATASETTE_VERSION,
        metadata: dict[str, Any] | None = None,
    ) -> Prebuilt:
        sha256 = hashlib.sha256(database.read_bytes()).hexdigest()
        key = json.dumps([sha256, database.name, list(plugins), datasette_version, metadata or {}], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        if key in built:
            restore(built[key])
            return built[key]
        with cache_lock(common / f"{digest}.lock"):
            facts_file = common / f"{digest}.json"
            if not facts_file.exists():
                facts = build(database, sha256, tuple(plugins), datasette_version, metadata or {}, pristine)
                facts_file.write_text(json.dumps(facts))
            facts = json.loads(facts_file.read_text())
        _link_missing(pristine, shared_store)
        built[key] = Prebuilt(
            database=database, plugins=tuple(plugins), datasette_version=datasette_version,
            metadata=metadata or {}, source_sha256=sha256, **facts,
        )  # fmt: skip
        return built[key]

    return get


@pytest.fixture
def published_gallery(
    prebuilt_bundle: Callable[..., Prebuilt], shared_store: Path, settings: Any, transactional_db: None
) -> Callable[..., Any]:
    """``published_gallery(database, plugins=(), datasette_version=..., metadata=None, title=..., gallery=None, gallery_id=None) -> Gallery``.

    An approved, public ``Gallery`` whose live build is the session's shared
    bundle of that combination (``prebuilt_bundle``): the rows are made for this
    test (the database is flushed between tests), the bundle files are not. Points
    ``LOCAL_STORAGE_ROOT`` at the shared store and clears ``S3_BUCKET`` for the test.
    Use it with ``live_gallery_server`` to open the gallery in Chromium.

    With ``gallery`` (one this fixture returned), that gallery gets the bundle as a
    new live build instead, as when its publisher publishes again: its database
    name, plugins, metadata and Datasette version follow the new build, and the
    earlier build stays ready (reachable at ``gallery.pinned_url(build_id)``). The
    combination must differ from the gallery's earlier builds (same combination,
    same build id). ``title`` is ignored then.

    With ``gallery_id``, the new gallery gets that id (so that content origin)
    instead of a random one: ``lasting_gallery`` uses it to serve one origin across tests.
    """
    from builder.manifest import Manifest
    from gallery.models import Approval, Build, BuildReview, BuildState, Gallery, bundled_settings
    from gallery.services import publishing
    from worker_shell.tasks import build_facts

    settings.S3_BUCKET = ""
    settings.LOCAL_STORAGE_ROOT = shared_store

    def make(
        database: Path,
        plugins: tuple[str, ...] = (),
        datasette_version: str | None = None,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
        gallery: Gallery | None = None,
        gallery_id: str | None = None,
    ) -> Gallery:
        options = {"datasette_version": datasette_version} if datasette_version else {}
        bundle = prebuilt_bundle(database, tuple(plugins), metadata=metadata, **options)
        described = {
            "database_name": bundle.database_name,
            "plugins": list(bundle.plugins),
            "metadata": bundle.metadata,
            "datasette_version": bundle.datasette_version,
        }
        if gallery is None:
            gallery = Gallery.objects.create(
                **({"id": gallery_id} if gallery_id else {}),
                title=title or f"Shared {database.name}",
                description=f"{database.name}, built once for the test session",
                moderation_state=Gallery.ModerationState.APPROVED,
                **described,
            )
        else:
            Gallery.objects.filter(pk=gallery.pk).update(**described)
        gallery.refresh_from_db()
        build = Build.objects.create(
            id=bundle.build_id,
            gallery=gallery,
            state=BuildState.READY,
            bundle_settings=bundled_settings(gallery),
            review=BuildReview.APPROVED,
            approval=Approval.OPERATOR,
            log=bundle.log,
            source_key=bundle.source_key,
            source_sha256=bundle.source_sha256,
            source_bytes=bundle.database.stat().st_size,
            bundle_bytes=bundle.bundle_bytes,
            **build_facts(Manifest.from_dict(bundle.manifest)),  # tables, card, scan flags: as the worker records them
        )
        publishing.publish_build(build)
        gallery.refresh_from_db()
        assert gallery.is_public
        return gallery

    return make


# --- Heavy tests, and galleries kept across tests (plugin checks; `make test-fast`) ------------

#: Fixtures that make a test heavy, whoever writes it: Chromium (``e2e`` and ``slow``), or a
#: Pyodide boot in Node, a full build or a Celery worker process (``slow``). ``make test-fast``
#: leaves out ``slow``, ``e2e``, ``integration`` and ``network``.
BROWSER_FIXTURES = frozenset({"chromium_path", "browser", "page"})
NODE_OR_WORKER_FIXTURES = frozenset(
    {"pyodide_runtime", "prebuilt_bundle", "published_gallery", "celery_worker_factory", "celery_worker"}
)


def pytest_itemcollected(item: pytest.Item) -> None:
    # Marked at collection, before `-m` deselects: a new browser test is kept out of
    # `make test-fast` without its author remembering the marker.
    used = set(getattr(item, "fixturenames", ()))
    if used & BROWSER_FIXTURES:
        item.add_marker(pytest.mark.e2e)
    if used & (BROWSER_FIXTURES | NODE_OR_WORKER_FIXTURES):
        item.add_marker(pytest.mark.slow)


#: Markers of the heavy tests (``pytest_itemcollected``, and the files that mark themselves).
HEAVY_MARKERS = ("e2e", "slow", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Files with heavy tests run first, each file's tests in their order: under xdist (make test
    # runs -n 4 --dist loadfile, a file per process at a time) the light files then fill the
    # end of the run, instead of one process finishing a long browser file alone.
    heavy_files = {item.path for item in items if any(item.get_closest_marker(name) for name in HEAVY_MARKERS)}
    items.sort(key=lambda item: item.path not in heavy_files)


@pytest.fixture(scope="session")
def plugin_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plugins.db`` from ``plugin_data.make_plugin_database``, written once per session.

    One path for the catalog's Node checks and the browser checks, so both ask
    ``prebuilt_bundle`` for the same combinations and share each build.
    """
    from tests.support.plugin_data import make_plugin_database

    return make_plugin_database(tmp_path_factory.mktemp("plugin-database") / "plugins.db")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The hostile and broken database corpus (``tests/corpus/make_corpus.py``), written once per session.

    ``{case name: path}``; ``corpus.make_corpus.CASES`` says what Glasshouse must do with each.
    """
    from tests.corpus.make_corpus import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def lasting_gallery_ids() -> dict[tuple[Any, ...], str]:
    """The gallery id ``lasting_gallery`` gave each combination this session (filled as tests ask)."""
    return {}


@pytest.fixture
def lasting_gallery(
    published_gallery: Callable[..., Any],
    lasting_gallery_ids: dict[tuple[Any, ...], str],
    live_gallery_server: LiveGalleryServer,
) -> Callable[..., Any]:
    """``lasting_gallery(database, plugins=(), datasette_version=None, metadata=None) -> Gallery``.

    ``published_gallery`` with the same gallery id, so the same content origin
    (``http://<id>.localhost:<port>/``), for a combination in every test of the
    session. The rows are made again in each test (the transactional database is
    flushed after each one) and the bundle is the session's shared build, so a
    browser context kept open across tests (its Service Worker, Cache Storage and
    booted Datasette) finds its gallery served by the session's one live server
    whenever a test runs. Between tests nothing serves it: keep navigations inside tests.
    """
    import json

    from gallery.models import new_gallery_id

    def make(
        database: Path,
        plugins: tuple[str, ...] = (),
        datasette_version: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        key = (str(database), tuple(plugins), datasette_version, json.dumps(metadata or {}, sort_keys=True))
        gallery_id = lasting_gallery_ids.setdefault(key, new_gallery_id())
        return published_gallery(
            database, plugins, datasette_version=datasette_version, metadata=metadata, gallery_id=gallery_id
        )

    return make
