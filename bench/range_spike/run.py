"""Run a spike in headless Chromium (a module Worker) and print its JSON result.

``--mode suspending`` (default) or ``run_sync``: open ``--db`` lazily with HTTP range requests
(range_vfs.py, worker.mjs) and time a few queries with the bytes and requests each took.
``--mode memfs``: the product's whole-file path (memfs_worker.mjs): stream into Cache Storage,
read once into MEMFS (``--copy``: the old arrayBuffer + copying path), query. Either way also
Chromium's peak PSS above idle (``browser.MemorySampler``: every process of that Chromium).

    .venv/bin/python bench/range_spike/run.py [--db big.db] [--db-dir /tmp/bigdb] [--mode memfs [--copy]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from browser import CHROMIUM, MemorySampler
from processes import free_port, wait_http

from tests.support.chromium import CHROMIUM_ARGS  # processes put the repository on sys.path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="big.db")
    parser.add_argument("--db-dir", default="/tmp/bigdb")
    parser.add_argument("--mode", default="suspending", choices=["suspending", "run_sync", "memfs"])
    parser.add_argument("--profile", action="store_true", help="an on-disk profile, not Playwright's incognito context")
    parser.add_argument("--copy", action="store_true", help="memfs mode: the old arrayBuffer + copying writeFile path")
    parser.add_argument("--block", type=int, default=64 * 1024, help="bytes per range request")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "serve.py"), "--port", str(port), "--db-dir", args.db_dir])
    try:
        wait_http(f"http://127.0.0.1:{port}/index.html")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            if args.profile:
                # A reader's ordinary profile: storage on disk (incognito keeps Cache Storage in memory).
                profile = tempfile.mkdtemp(prefix="spike-profile-")
                browser = playwright.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
            else:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.on("console", lambda m: print("console:", m.text))
            page.goto("about:blank")
            time.sleep(2)
            # This process's descendants: the Playwright driver (a few MB, steady) and that Chromium.
            sampler = MemorySampler(os.getpid())
            idle = sampler.idle()
            sampler.start()
            started = time.monotonic()
            page.goto(f"http://127.0.0.1:{port}/index.html?db={args.db}&mode={args.mode}&block={args.block}{'&copy=1' if args.copy else ''}")
            page.wait_for_function("() => window.spikeResult", timeout=600_000, polling=500)
            result = page.evaluate("window.spikeResult")
            result["wallSeconds"] = round(time.monotonic() - started, 1)
            sampler.stop_event.set()
            sampler.join()
            result["peakPssAboveIdleMB"] = round((sampler.peak - idle) / 1e6)
            print(json.dumps(result, indent=2))
            browser.close()
    finally:
        if args.profile:
            shutil.rmtree(profile, ignore_errors=True)
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
