"""Debian's Chromium, driven by Playwright: one browser per session, a fresh context per test.

While a browser runs, ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set (``playwright_driver``): Playwright's
sync API keeps an asyncio loop on the test thread. ``make test`` installs Chromium; a missing
one fails the test with what to run (never skips).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import launch_args


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

    Launched from ``chromium_path`` with ``launch_args()``. While it runs,
    ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set: Playwright's sync API keeps an asyncio
    loop on the test thread, and Django would otherwise refuse ORM calls made by
    the test itself (the live server runs in its own thread and is unaffected).
    """
    yield from _launch_chromium(playwright_driver, chromium_path, launch_args())


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


@pytest.fixture(scope="session")
def partitioned_browser(chromium_path: str, playwright_driver: Any) -> Iterator[Any]:
    """A headless Chromium that treats cross-site iframes as current browsers do (storage partitioned).

    Playwright disables ``ThirdPartyStoragePartitioning``, and Chromium then refuses a cross-site
    iframe every storage API (no Service Worker in an embed). A second ``--disable-features=``
    with Playwright's own list minus that feature wins over Playwright's (the last flag counts).
    Otherwise as ``browser``.
    """
    yield from _launch_chromium(playwright_driver, chromium_path, launch_args(storage_partitioned=True))


@pytest.fixture
def profile_page(chromium_path: str, playwright_driver: Any, tmp_path: Path) -> Iterator[Any]:
    """A Playwright ``Page`` of a headless Chromium with a profile on disk (under ``tmp_path``), closed after the test.

    Every ``browser.new_context()`` is off the record (an incognito profile), where Chromium refuses
    what a reader's normal window allows: installing a web app (``Page.getInstallabilityErrors``
    says ``in-incognito``). A browser of its own, launched with ``launch_args()``; default timeout 30 s.
    """
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=chromium_path, headless=True, args=launch_args()
    )
    context.set_default_timeout(30_000)
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


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
