"""How the suite runs: its markers, which tests count as heavy, file order under xdist, and
each xdist process's own Redis database.

- ``pytest_itemcollected`` marks a test ``e2e`` and/or ``slow`` by the fixtures it uses
  (``BROWSER_FIXTURES``, ``NODE_OR_WORKER_FIXTURES``), so ``make test-fast`` leaves it out;
- ``pytest_collection_modifyitems`` runs the files with heavy tests first;
- ``pytest_runtest_makereport`` keeps each phase's report on the item: ``did_test_fail(request)``
  tells a fixture at teardown whether its test failed;
- at import, under pytest-xdist, ``REDIS_URL`` and the settings read from it move to the
  process's own database (``_own_redis_database_per_xdist_worker``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest


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
    config.addinivalue_line("markers", "e2e: drives a real browser (Chromium, WebKitGTK) against a live server")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    # Keep each phase's report on the item, so fixtures can tell at teardown
    # whether their test failed (and print a worker's log only then).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def did_test_fail(request: pytest.FixtureRequest) -> bool:
    """Whether the test of ``request`` failed in its set-up or its call (read at teardown)."""
    return any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
    )


# --- Heavy tests (`make test-fast` leaves them out) ----------------------------------------------

#: Fixtures that make a test heavy, whoever writes it: a browser, Chromium or WebKitGTK (``e2e`` and ``slow``), or a
#: Pyodide boot in Node, a full build or a Celery worker process (``slow``). ``make test-fast``
#: leaves out ``slow``, ``e2e``, ``integration`` and ``network``.
BROWSER_FIXTURES = frozenset({"chromium_path", "browser", "page", "xvfb_display", "webkit_webdriver", "firefox"})
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
    # Files with heavy tests run first, each file's tests in their order. Under xdist (make test
    # runs -n 4 --dist loadfile, a file per process at a time), xdist then starts the files with
    # the most tests first (its default --loadscope-reorder; a stable sort, so this order only
    # breaks its ties): the catalog's two long files start first. Starting the longest files
    # first instead (--no-loadscope-reorder with a list of them) was measured slower on 6 December:
    # 20:18 of pytest in a fresh clone, against 16:08 in xdist's order on a fresh machine (the heavy
    # files then wait on each other's builds and on the fault tests' pauses, a core idle).
    heavy_files = {item.path for item in items if any(item.get_closest_marker(name) for name in HEAVY_MARKERS)}
    items.sort(key=lambda item: item.path not in heavy_files)
