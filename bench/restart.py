"""Benchmark: Service Worker (and worker-mode) restart with and without a memory snapshot.

Runs the real stack on loopback (``bench/stack.py``: gunicorn, a solo Celery worker and the
counting proxy, ``manage.py publish --wait`` on the embedded defaults in a temporary folder), then
in Debian's headless Chromium, for each of ``--runs`` fresh browser contexts: a cold first visit
to the database page, a few warm navigations, a wait until the runtime has saved its snapshot in
Cache Storage (at most ``--snapshot-wait`` seconds: a runtime without snapshots never does), then
``--restarts`` times: CDP ``ServiceWorker.stopAllWorkers`` and one timed navigation (to the page's
``load`` event) with how Python started (``<html data-glasshouse-boot>``, set by keepalive.mjs).
With ``--worker`` the same in worker mode, where a reload starts a new Worker. Prints medians
and every figure; asserts nothing.

    .venv/bin/python bench/restart.py [--database PATH] [--runs 3] [--restarts 3] [--worker]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import wait_for_snapshot
from stack import GlasshouseStack

from tests.support.chromium import CHROMIUM_ARGS

REPO = Path(__file__).resolve().parent.parent
#: How Python started for this page (keepalive.mjs's status), waiting up to 5 s for the answer to its ping.
BOOT_STATUS = """async () => {
  for (let i = 0; i < 50 && !document.documentElement.dataset.glasshouseBoot; i++) await new Promise((r) => setTimeout(r, 100));
  return document.documentElement.dataset.glasshouseBoot || "unknown";
}"""
BOOT_MS = 240_000


def publish(database: Path, data: Path) -> tuple[GlasshouseStack, str]:
    """Start the stack (``stack.GlasshouseStack``) and publish ``database``; return the stack and the gallery URL."""
    stack = GlasshouseStack(data)
    try:
        stack.start()
        return stack, stack.publish(database, [], timeout=1800).url
    except BaseException:
        stack.close()
        raise


def new_context(browser: object, args: argparse.Namespace) -> object:
    """A fresh browser context; with ``--console`` its pages' and workers' console lines are printed."""
    context = browser.new_context()
    if args.console:
        context.on("console", lambda message: print(f"  [console {message.type}] {message.text}", flush=True))
    return context


def service_worker_run(browser: object, url: str, database: str, args: argparse.Namespace) -> dict:
    """One fresh context in Service Worker mode: cold visit, warm navigations, snapshot wait, restarts."""
    context = new_context(browser, args)
    page = context.new_page()
    started = time.monotonic()
    page.goto(url + database, timeout=BOOT_MS)
    page.wait_for_selector("h1:not(:has-text('Loading'))", timeout=BOOT_MS)
    page.wait_for_function("() => !document.getElementById('phase')", timeout=BOOT_MS)
    result = {"cold": time.monotonic() - started, "restarts": [], "boots": []}
    for href in page.eval_on_selector_all(f"a[href*='/{database}/']", "els => els.map(e => e.href)")[:3]:
        page.goto(href)
    result["snapshot_wait"] = wait_for_snapshot(page, args.snapshot_wait)
    cdp = context.new_cdp_session(page)
    cdp.send("ServiceWorker.enable")
    for _ in range(args.restarts):
        cdp.send("ServiceWorker.stopAllWorkers")
        page.wait_for_timeout(300)
        started = time.monotonic()
        page.goto(url + database, timeout=BOOT_MS)
        result["restarts"].append(time.monotonic() - started)
        assert page.locator("h1").first.inner_text(), "the page after a restart has a heading"
        # keepalive.mjs sets it from its first ping's answer; a runtime without it never does.
        result["boots"].append(page.evaluate(BOOT_STATUS))
    context.close()
    return result


def worker_mode_run(browser: object, url: str, database: str, args: argparse.Namespace) -> dict:
    """One fresh context in worker mode: cold visit, snapshot wait, then timed reloads (each a new Worker)."""
    context = new_context(browser, args)
    page = context.new_page()
    target = url + database + "?_glasshouse_mode=worker"
    frame = page.frame_locator("iframe.glasshouse-page")
    started = time.monotonic()
    page.goto(target, timeout=BOOT_MS)
    frame.locator("h1").first.wait_for(timeout=BOOT_MS)
    result = {"cold": time.monotonic() - started, "restarts": [], "boots": []}
    result["snapshot_wait"] = wait_for_snapshot(page, args.snapshot_wait)
    for _ in range(args.restarts):
        started = time.monotonic()
        page.reload(timeout=BOOT_MS)
        page.frame_locator("iframe.glasshouse-page").locator("h1").first.wait_for(timeout=BOOT_MS)
        result["restarts"].append(time.monotonic() - started)
        result["boots"].append("worker")
    context.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=REPO.parent / "shared" / "data" / "chinook.sqlite")
    parser.add_argument("--runs", type=int, default=3, help="fresh browser contexts")
    parser.add_argument("--restarts", type=int, default=3, help="restarts timed per context")
    parser.add_argument("--snapshot-wait", type=float, default=60, help="seconds to wait for a saved snapshot")
    parser.add_argument("--worker", action="store_true", help="worker mode instead of Service Worker mode")
    parser.add_argument("--console", action="store_true", help="print the runtime's console messages")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="glasshouse-restart-"))
    stack = None
    runs = []
    try:
        stack, url = publish(args.database, data)
        database = re.sub(r"[^a-z0-9_-]+", "-", args.database.stem.lower()).strip("-_")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            for _ in range(args.runs):
                run = worker_mode_run if args.worker else service_worker_run
                runs.append(run(browser, url, database, args))
            browser.close()
    finally:
        if stack:
            stack.close()
        shutil.rmtree(data, ignore_errors=True)

    colds = [r["cold"] for r in runs]
    restarts = [t for r in runs for t in r["restarts"]]
    boots = [b for r in runs for b in r["boots"]]
    waits = [r["snapshot_wait"] for r in runs]
    print(f"mode                  {'worker (Worker per page load)' if args.worker else 'Service Worker'}; {args.database.name}")
    print(f"load average          {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores at the end")
    print(f"cold first visit      {statistics.median(colds):6.2f} s median of {len(colds)}: {', '.join(f'{c:.2f}' for c in colds)}")
    print(f"snapshot saved after  {', '.join('none' if w is None else f'{w:.1f} s' for w in waits)} (from the end of the warm navigations)")
    print(f"restart navigation    {statistics.median(restarts):6.2f} s median of {len(restarts)}: {', '.join(f'{t:.2f}' for t in restarts)}")
    print(f"restart / cold        {statistics.median(restarts) / statistics.median(colds):6.2f}")
    print(f"how Python started    {', '.join(boots)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
