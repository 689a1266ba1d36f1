"""Debian's Firefox ESR, driven over WebDriver BiDi by puppeteer-core (``tests/firefox/driver.mjs``).

``firefox(hosts)`` starts one headless Firefox for the test, with the galleries' ``*.localhost``
names resolving to loopback and counting as secure contexts (DESIGN.md, "Other engines on these
machines"); every one started is closed after the test. ``make test`` (``make firefox``)
installs Debian's ``firefox-esr`` and the pinned puppeteer-core; a missing one fails the test
with what to run (never skips).
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: The npm project that holds puppeteer-core and the driver script.
DRIVER_DIR = Path(__file__).resolve().parents[1] / "firefox"
#: Seconds one driver request may take (a navigation waits for its page's load event).
REQUEST_S = 180


class FirefoxError(AssertionError):
    """What the driver or Firefox said when a request failed."""


class Firefox:
    """One headless Firefox: ``goto(url)``, ``evaluate(expression)`` (a JavaScript expression whose value,
    awaited, is JSON), ``until(expression)``, ``text_of(selector, starts_with)`` and ``url``."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._next = 0

    def call(self, op: str, **args: Any) -> Any:
        """Send one request to the driver and return its result; ``FirefoxError`` with the driver's message on failure."""
        assert self.process.stdin and self.process.stdout
        self._next += 1
        self.process.stdin.write(json.dumps({"id": self._next, "op": op, **args}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], REQUEST_S)
        if not ready:
            raise FirefoxError(f"Firefox's driver did not answer {op} within {REQUEST_S} s")
        line = self.process.stdout.readline()
        if not line:
            raise FirefoxError(f"Firefox's driver exited (code {self.process.poll()}) during {op}")
        answer = json.loads(line)
        if "error" in answer:
            raise FirefoxError(f"Firefox: {op} failed: {answer['error']}")
        return answer["result"]

    def goto(self, url: str, timeout: float = 60) -> Any:
        """Navigate the tab to ``url`` and wait for its load event; the HTTP status (``None`` when a Service Worker made the answer)."""
        return self.call("goto", url=url, timeoutMs=int(timeout * 1000))

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the tab (a promise is awaited)."""
        return self.call("evaluate", expression=expression)

    @property
    def url(self) -> str:
        """The tab's current URL."""
        return str(self.call("url"))

    def until(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate ``expression`` until it is truthy and return it; an expression that throws (the page
        is being replaced) counts as not yet. Fails the test, quoting it, after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except FirefoxError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"Firefox: still false after {timeout} s: {expression}")
            time.sleep(0.25)

    def text_of(self, selector: str, starts_with: str, timeout: float = 30) -> str:
        """Wait until the first ``selector`` of the page the reader sees (worker mode's page frame when there
        is one, else the document) starts with ``starts_with``; return its text."""
        expression = (
            "(() => { const frame = document.querySelector('iframe.glasshouse-page');"
            " const doc = frame ? frame.contentDocument : document;"
            f" const element = doc && doc.querySelector({json.dumps(selector)});"
            " const text = element ? element.textContent.trim() : '';"
            f" return text.startsWith({json.dumps(starts_with)}) ? text : ''; }})()"
        )
        return str(self.until(expression, timeout))


@pytest.fixture
def firefox() -> Iterator[Callable[..., Firefox]]:
    """``firefox(hosts, prefs=None) -> Firefox``: a new headless Firefox ESR with empty storage.

    ``hosts``: the ``*.localhost`` host names (no port) the test opens; ``prefs``: further Firefox
    preferences (``{"dom.serviceWorkers.enabled": False}`` for a browser without Service Workers).
    """
    executable = shutil.which("firefox-esr") or shutil.which("firefox")
    node = shutil.which("node")
    if executable is None:
        pytest.fail(
            "Firefox ESR is not installed: run `make test` (its `make firefox` step) or, as root, `apt-get install firefox-esr`."
        )
    if node is None or not (DRIVER_DIR / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail(f"puppeteer-core is not installed: run `make firefox` (npm ci in {DRIVER_DIR}).")
    started: list[Firefox] = []

    def start(hosts: list[str], prefs: dict[str, Any] | None = None) -> Firefox:
        process = subprocess.Popen(
            [node, str(DRIVER_DIR / "driver.mjs")], cwd=DRIVER_DIR, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        browser = Firefox(process)
        started.append(browser)
        browser.call("launch", executablePath=executable, hosts=hosts, prefs=prefs or {})
        return browser

    yield start
    for browser in started:
        try:
            browser.call("close")
        except (FirefoxError, OSError, ValueError):
            pass
        # The driver reads its standard input until it ends: without this, it outlived the browser
        # it had closed, and each teardown waited here the full 20 s, then killed it.
        if browser.process.stdin:
            try:
                browser.process.stdin.close()
            except OSError:
                pass
        try:
            browser.process.wait(20)
        except subprocess.TimeoutExpired:
            browser.process.kill()
            browser.process.wait()
