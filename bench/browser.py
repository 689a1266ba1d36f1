"""Debian's Chromium for the reader benchmark: a fresh profile per session, the memory of that
browser's processes, and the two ways a page is timed.

Timing: a *visit* is wall-clock seconds from just before Playwright's ``goto`` until Datasette's
page is rendered (``document.readyState`` complete, no bootstrap ``#loading`` element, Datasette's
``footer.ft`` present), polled every 30 ms, so it spans the bootstrap page, the Service Worker's
downloads and boot, and the hand-over reload. A *navigation* is the page's own Navigation Timing:
``loadEventEnd - startTime`` of ``performance.getEntriesByType("navigation")[0]``, in ms, the
same for a gallery (answered by its Service Worker) and for native Datasette (over HTTP).
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Playwright
from processes import descendants, pss_bytes

from tests.support.chromium import CHROMIUM_ARGS  # processes put the repository on sys.path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: "" while loading; "ok" once Datasette's page is rendered; "problem: ..." if the bootstrap page shows one.
_RENDERED = """() => {
  const problem = document.getElementById("problem");
  if (problem && !problem.hidden && problem.textContent.trim()) return "problem: " + problem.textContent.trim();
  if (document.body && document.body.dataset.benchError) return "problem: " + document.body.dataset.benchError;
  if (document.body && document.body.dataset.benchReady) return "ok";
  return document.readyState === "complete" && !document.getElementById("loading") && document.querySelector("footer.ft") ? "ok" : "";
}"""
#: ``[_RENDERED's state, the bootstrap page's phase line or ""]``.
_RENDERED_AND_PHASE = f"""() => [({_RENDERED})(), ((document.getElementById("phase") || {{}}).textContent || "").trim()]"""
_NAVIGATION_MS = """() => {
  const entry = performance.getEntriesByType("navigation")[0];
  return entry && entry.loadEventEnd > 0 ? entry.loadEventEnd - entry.startTime : null;
}"""


class VisitFailed(Exception):
    """A page that did not render (a timeout, or the problem the bootstrap page showed)."""


class MemorySampler(threading.Thread):
    """Samples the summed PSS of a browser's processes (``root`` and its descendants) every
    ``interval`` s; ``peak`` is the largest sum in bytes since the last ``reset``."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="memory")
        self.root, self.interval = root, interval
        self.stop_event = threading.Event()
        self.peak = 0
        #: At the peak: ``{process kind: PSS bytes}`` (``process_kind``); the Service Worker and the
        #: tab both run in renderers, Cache Storage's files are the storage service's (a utility).
        self.peak_by_kind: dict[str, int] = {}

    def by_kind(self) -> dict[str, int]:
        """Summed PSS in bytes per process kind (``browser``, ``renderer``, ``gpu-process``, ``utility``, ...)."""
        kinds: dict[str, int] = {}
        for pid in descendants(self.root):
            kind = process_kind(pid)
            kinds[kind] = kinds.get(kind, 0) + pss_bytes(pid)
        return kinds

    def total(self) -> int:
        return sum(pss_bytes(pid) for pid in descendants(self.root))

    def reset(self) -> None:
        self.peak = 0
        self.peak_by_kind = {}

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            kinds = self.by_kind()
            total = sum(kinds.values())
            if total > self.peak:
                self.peak, self.peak_by_kind = total, kinds

    def idle(self, seconds: float = 1.5) -> int:
        """The median summed PSS over ``seconds`` (bytes): the browser's figure while it does nothing."""
        samples = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            samples.append(self.total())
            time.sleep(self.interval)
        return int(statistics.median(samples))


#: True once this origin's Cache Storage holds the runtime's saved memory snapshot (the cache keys
#: of builder/runtime/reader/js/snapshot.mjs); a runtime without snapshots never saves one.
_HAS_SNAPSHOT = """async () => {
  for (const name of await caches.keys()) {
    const keys = await (await caches.open(name)).keys();
    if (keys.some((r) => r.url.includes("/_glasshouse_snapshot/") && r.url.endsWith("/heap"))) return true;
  }
  return false;
}"""


def process_kind(pid: int) -> str:
    """Chromium's kind of process ``pid``: its ``--type=`` (``renderer``, ``gpu-process``, ``zygote``),
    a utility's ``--utility-sub-type=`` (``utility:storage.mojom.StorageService``), ``browser``
    with neither; ``gone`` once it has exited."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "gone"
    # Chromium's child processes rewrite their title: one string, flags separated by spaces.
    argv = raw.split("\0") if raw.count("\0") > 1 else raw.split()
    flags = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    kind = flags.get("type", "browser")
    return f"utility:{flags['utility-sub-type']}" if kind == "utility" and "utility-sub-type" in flags else kind


def wait_for_snapshot(page: Any, seconds: float) -> float | None:
    """Seconds until ``page``'s origin holds a saved snapshot (polled every 250 ms), or ``None`` after ``seconds``.

    The runtime saves it once idle after its first boot; a restart measured before that boots Python again.
    """
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if page.evaluate(_HAS_SNAPSHOT):
            return time.monotonic() - started
        page.wait_for_timeout(250)
    return None


class Session:
    """One Chromium with the profile ``profile`` (a folder; empty for a first visit, reused for a
    browser restart), headless, Debian's binary, the test suite's flags. ``page`` is its tab,
    ``memory`` samples its processes. Close with ``close``."""

    def __init__(self, playwright: Playwright, profile: Path) -> None:
        self.profile = profile
        self.context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        self.page: Page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.memory = MemorySampler(self._browser_pid())
        self.phases: list[tuple[str, float]] = []
        #: The runtime's console lines (``Glasshouse: ...``) from pages and Service Workers, in order.
        self.console: list[str] = []
        self.context.on("console", self._console)
        self.memory.start()

    def _console(self, message: Any) -> None:
        if message.text.startswith("Glasshouse:"):
            self.console.append(message.text)

    def _browser_pid(self) -> int:
        flag = f"--user-data-dir={self.profile}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if flag in argv and not any(arg.startswith(b"--type=") for arg in argv):
                return int(entry.name)
        raise RuntimeError(f"no Chromium process with {flag.decode()}")

    def stop_service_workers(self) -> None:
        """Stop every Service Worker of this browser (CDP ``ServiceWorker.stopAllWorkers``), as the
        browser does to an idle one; return once none is running (at most 10 s)."""
        cdp = self.context.new_cdp_session(self.page)
        running: dict[str, str] = {}
        cdp.on("ServiceWorker.workerVersionUpdated",
               lambda event: running.update({v["versionId"]: v["runningStatus"] for v in event["versions"]}))  # fmt: skip
        cdp.send("ServiceWorker.enable")
        cdp.send("ServiceWorker.stopAllWorkers")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(status != "stopped" for status in running.values()):
            self.page.wait_for_timeout(50)
        cdp.detach()

    def visit(self, url: str, timeout: float) -> float:
        """Seconds from ``goto(url)`` until the page is rendered (see the module's docstring);
        ``VisitFailed`` with the reason after ``timeout`` s or once the bootstrap page shows a problem.

        Leaves ``phases``: ``[(label, seconds since goto)]``, when each line the bootstrap page
        showed (its ``#phase``: "Downloading the runtime and the database…", "Starting Python…",
        ...) was first seen, between ``("navigation", 0.0)`` and ``("rendered", s)``; polled every
        30 ms, so each time is late by up to 30 ms plus one ``evaluate``."""
        started = time.monotonic()
        deadline = started + timeout
        self.phases = [("navigation", 0.0)]
        try:
            self.page.goto(url, wait_until="commit", timeout=timeout * 1000)
        except PlaywrightError as error:
            raise VisitFailed(f"{url}: {error.message.splitlines()[0]}") from error
        while True:
            try:
                state, phase = self.page.evaluate(_RENDERED_AND_PHASE)
            except PlaywrightError:
                state, phase = "", ""  # the hand-over reload replaced the document
            if phase and phase != self.phases[-1][0]:
                self.phases.append((phase, round(time.monotonic() - started, 3)))
            if state == "ok":
                self.phases.append(("rendered", round(time.monotonic() - started, 3)))
                return time.monotonic() - started
            if state.startswith("problem"):
                raise VisitFailed(f"{url}: {state}")
            if time.monotonic() > deadline:
                mode = self._quiet(lambda: self.page.evaluate("document.documentElement.dataset.glasshouseMode || ''"))
                phase = self._quiet(lambda: self.page.evaluate("(document.getElementById('phase') || {}).textContent || ''"))
                raise VisitFailed(f"{url}: not rendered within {timeout:.0f} s (mode {mode or '?'}, phase {phase or '?'})")
            time.sleep(0.03)

    @staticmethod
    def _quiet(read):
        try:
            return read()
        except PlaywrightError:
            return ""

    def navigation(self, url: str, timeout: float = 60) -> tuple[float, int]:
        """``(milliseconds, HTTP status)`` of one navigation to ``url`` (Navigation Timing, see the
        module's docstring); ``VisitFailed`` if it does not load within ``timeout`` s."""
        try:
            response = self.page.goto(url, wait_until="load", timeout=timeout * 1000)
            handle = self.page.wait_for_function(_NAVIGATION_MS, timeout=timeout * 1000, polling=20)
        except PlaywrightError as error:
            raise VisitFailed(f"{url}: {error.message.splitlines()[0]}") from error
        return float(handle.json_value()), response.status if response else 0

    def close(self) -> None:
        self.memory.stop_event.set()
        try:
            self.context.close()
        except PlaywrightError:
            pass
