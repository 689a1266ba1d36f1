"""How the suite runs: its markers, which tests count as heavy, file order under xdist, and
each xdist process's own Redis database.

- ``pytest_itemcollected`` marks a test ``e2e`` and/or ``slow`` by the fixtures it uses
  (``BROWSER_FIXTURES``, ``NODE_OR_WORKER_FIXTURES``), so ``make test-fast`` leaves it out;
- ``pytest_collection_modifyitems`` runs the longest files first (``LONGEST_FILES``), then the other
  files with heavy tests;
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
BROWSER_FIXTURES = frozenset({"chromium_path", "browser", "page", "xvfb_display", "webkit_webdriver"})
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


#: The files that take longest in ``make test`` (summed phase durations under ``-n 4``, 6 December:
#: 490 s for the first, 70 s for the last), longest first. They start first, in this order.
LONGEST_FILES = (
    "tests/e2e/test_plugins_in_browser.py",
    "tests/builder/test_catalog.py",
    "tests/deploy/test_production_shape.py",
    "tests/worker_shell/test_build_faults.py",
    "tests/builder/test_compat.py",
    "tests/e2e/test_publish_in_browser.py",
    "tests/worker_shell/test_hostile_uploads.py",
    "tests/worker_shell/test_build_task.py",
    "tests/e2e/test_worker_mode_in_browser.py",
    "tests/e2e/test_gallery_security_in_browser.py",
    "tests/e2e/test_webkit_in_browser.py",
    "tests/e2e/test_pinned_and_download_in_browser.py",
    "tests/e2e/test_tabular_in_browser.py",
    "tests/e2e/test_removal_in_browser.py",
    "tests/gallery/test_gallery_page_of_a_real_build.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under xdist (make test runs -n 4 --dist loadfile, a file per process at a time), the longest
    # files start first, longest first, then the other files with heavy tests, each file's tests in
    # their order: the short files then fill the end of the run, instead of one process finishing
    # a long file alone (longest-processing-time-first scheduling).
    heavy_files = {item.path for item in items if any(item.get_closest_marker(name) for name in HEAVY_MARKERS)}
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(
        key=lambda item: (item.path not in heavy_files, rank.get(item.nodeid.split("::")[0], len(rank)))
    )
