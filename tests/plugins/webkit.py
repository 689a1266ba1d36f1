"""WebKitGTK (Safari's engine family), driven by Selenium through Debian's WebKitWebDriver.

WebKitGTK's MiniBrowser has no headless mode: it needs an X display, so the session runs one
Xvfb server (``xvfb_display``) and one WebKitWebDriver process on it (``webkit_webdriver``); each
test gets fresh browser sessions from ``webkit_session`` (about 0.5 s each, every one with empty
storage), or one from ``webkit``. ``make test`` (``make webkit``) installs ``webkit2gtk-driver``
and ``xvfb``; a missing one fails the test with what to run (never skips). What WebKitGTK does and
lacks here is in DESIGN.md ("Other engines on these machines").
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Debian's WebDriver for WebKitGTK (package ``webkit2gtk-driver``).
WEBKIT_WEBDRIVER = "/usr/bin/WebKitWebDriver"
#: The browser WebKitWebDriver starts (package ``libwebkit2gtk-4.1-0``, which the driver depends on).
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
#: Seconds Xvfb has to say which display it took.
XVFB_START_S = 30
#: Seconds a page load may take before Selenium gives up (a gallery's first page waits longer, in the test).
PAGE_LOAD_S = 60


def _missing(what: str) -> None:
    pytest.fail(
        f"{what} is not installed: run `make test` (its `make webkit` step installs Debian's "
        "webkit2gtk-driver and xvfb) or, as root, "
        "`apt-get install --no-install-recommends webkit2gtk-driver xvfb`."
    )


@pytest.fixture(scope="session")
def xvfb_display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The X display (``":<n>"``) of an Xvfb server that runs for the whole session.

    Xvfb picks a free display number itself (``-displayfd``) and writes it once it accepts
    clients, so several pytest processes (xdist) never race for one. Listens on a local socket
    only (``-nolisten tcp``). Fails with Xvfb's log if it says nothing within ``XVFB_START_S``.
    """
    binary = shutil.which("Xvfb")
    if binary is None:
        _missing("Xvfb")
    log_path = tmp_path_factory.mktemp("xvfb") / "xvfb.log"
    read_end, write_end = os.pipe()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + XVFB_START_S
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read_end, 16) if ready else b""
            if not chunk:
                process.kill()
                process.wait()
                pytest.fail(f"Xvfb did not start:\n{log_path.read_text()}")
            number += chunk
        yield f":{number.decode().strip()}"
    finally:
        os.close(read_end)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def webkit_webdriver(xvfb_display: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one WebKitWebDriver process (``http://localhost:<port>``) for the session, on ``xvfb_display``.

    Selenium's ``Service`` starts it and waits until it answers; every browser it starts gets the
    display. Its log is the file ``webkitwebdriver.log`` in a session temporary folder.
    """
    from selenium.webdriver.webkitgtk.service import Service

    if not (os.access(WEBKIT_WEBDRIVER, os.X_OK) and os.access(MINIBROWSER, os.X_OK)):
        _missing(f"WebKitGTK ({WEBKIT_WEBDRIVER}, {MINIBROWSER})")
    log_path = tmp_path_factory.mktemp("webkit") / "webkitwebdriver.log"
    service = Service(
        executable_path=WEBKIT_WEBDRIVER, log_output=str(log_path), env={**os.environ, "DISPLAY": xvfb_display}
    )
    service.start()
    try:
        yield service.service_url
    finally:
        service.stop()


def webkit_options() -> Any:
    """Selenium options for MiniBrowser under automation (``webkitgtk:browserOptions``).

    ``--automation`` is required: WebKitWebDriver refuses a session whose browser has no arguments.
    """
    from selenium.webdriver.webkitgtk.options import Options

    options = Options()
    options.binary_location = MINIBROWSER
    options.add_argument("--automation")
    return options


@pytest.fixture
def webkit_session(webkit_webdriver: str) -> Iterator[Callable[[], Any]]:
    """``webkit_session() -> WebDriver``: a new WebKitGTK browser (Selenium ``WebDriver``), empty storage.

    Each call starts a MiniBrowser of its own (its own cookies, caches, Service Workers), with a
    page-load timeout of ``PAGE_LOAD_S``; every one started in the test is quit after it. Scripts
    run through ``execute_script`` must not call ``eval``: galleries' CSP has no ``'unsafe-eval'``.
    """
    from selenium import webdriver
    from selenium.webdriver.remote.client_config import ClientConfig
    from selenium.webdriver.remote.remote_connection import RemoteConnection

    sessions: list[Any] = []

    def start() -> Any:
        connection = RemoteConnection(client_config=ClientConfig(remote_server_addr=webkit_webdriver))
        driver = webdriver.Remote(command_executor=connection, options=webkit_options())
        sessions.append(driver)
        driver.set_page_load_timeout(PAGE_LOAD_S)
        return driver

    yield start
    for driver in sessions:
        driver.quit()


@pytest.fixture
def webkit(webkit_session: Callable[[], Any]) -> Any:
    """A WebKitGTK browser (Selenium ``WebDriver``) of this test, started with empty storage (see ``webkit_session``)."""
    return webkit_session()
