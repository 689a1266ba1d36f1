"""Benchmark: build time, first visit, warm navigations and Service Worker restart of a real gallery.

Runs the real stack on loopback with the embedded defaults in a temporary data
folder: gunicorn (app + content origin), one Celery worker (filesystem broker),
``manage.py publish --wait``, then Debian's Chromium through Playwright. Prints
figures; asserts nothing.

    .venv/bin/python bench/cold_start.py [--database PATH] [--runs N] [--plugin NAME ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


@dataclass
class PublishedGallery:
    """A gallery built and served by ``published``: its URL, database page name and build figures."""

    url: str  #: the gallery's content origin, ending in ``/``
    database: str  #: Datasette's name of the database (its page is ``url + database``)
    build_seconds: float  #: wall-clock time of ``publish --wait``
    first_visit_bytes: int  #: bytes a first visit downloads, as ``publish`` reports them


@contextmanager
def published(database: Path, plugins: list[str], extra_env: dict[str, str] | None = None) -> Iterator[PublishedGallery]:
    """Serve a fresh Glasshouse on loopback and publish ``database`` on it (approved, built).

    Embedded defaults in a temporary data folder: gunicorn (app + content origin) and one Celery
    worker (filesystem broker), stopped and the folder removed on exit. ``extra_env`` overrides
    settings (e.g. ``UPLOAD_MAX_BYTES`` for a database over the default cap). Raises
    ``SystemExit`` with publish's output if the build fails.
    """
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="glasshouse-bench-"))
    env = dict(os.environ, GLASSHOUSE_DATA_DIR=str(data), PORT=str(port), CONTENT_PORT=str(port), **(extra_env or {}))
    env.setdefault("PYODIDE_RUNTIME_DIR", str(REPO / "var" / "runtime" / "pyodide-314.0.7"))
    env.setdefault("WHEEL_CACHE_DIR", str(REPO / "var" / "cache" / "wheels"))
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    procs = [
        subprocess.Popen(
            [py, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-k", "gthread", "--threads", "8", "gallery.wsgi:application"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [py, "-m", "celery", "-A", "worker_shell.celery:app", "worker", "--pool=solo", "--loglevel=WARNING"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        started = time.monotonic()
        run = subprocess.run(
            [py, "manage.py", "publish", str(database), "--approve", "--wait", *(a for n in plugins for a in ("--plugin", n))],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if run.returncode != 0:
            raise SystemExit(f"publish {database} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        out = run.stdout
        yield PublishedGallery(
            url=re.search(r"Gallery URL: (\S+)", out).group(1),
            database=re.sub(r"[^a-z0-9_-]+", "-", database.stem.lower()).strip("-_"),
            build_seconds=time.monotonic() - started,
            first_visit_bytes=int(re.search(r"([\d,]+) bytes for a first visit", out).group(1).replace(",", "")),
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=REPO.parent / "shared" / "data" / "chinook.sqlite")
    parser.add_argument("--runs", type=int, default=10, help="warm navigations to time")
    parser.add_argument("--plugin", action="append", default=[])
    args = parser.parse_args()

    with published(args.database, args.plugin) as gallery:
        url, database = gallery.url, gallery.database
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_context().new_page()
            started = time.monotonic()
            page.goto(url + database, timeout=180_000)
            page.wait_for_selector("table, .rows-and-columns, h1:not(:has-text('Loading'))", timeout=180_000)
            page.wait_for_function("() => !document.getElementById('phase')", timeout=180_000)
            cold = time.monotonic() - started
            tables = page.eval_on_selector_all("a[href*='/" + database + "/']", "els => els.map(e => e.href)")[: args.runs] or [url + database]
            warm = []
            for href in (tables * args.runs)[: args.runs]:
                started = time.monotonic()
                page.goto(href)
                warm.append(time.monotonic() - started)
            cdp = page.context.new_cdp_session(page)
            cdp.send("ServiceWorker.enable")
            cdp.send("ServiceWorker.stopAllWorkers")
            page.wait_for_timeout(300)
            started = time.monotonic()
            page.goto(url + database)
            restart = time.monotonic() - started
            heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
            browser.close()

    print(f"database              {args.database.name} ({args.database.stat().st_size / 1e6:.1f} MB), plugins: {', '.join(args.plugin) or 'none'}")
    print(f"build (publish --wait) {gallery.build_seconds:6.1f} s  (includes the Node compatibility check)")
    print(f"first-visit download  {gallery.first_visit_bytes / 1e6:6.1f} MB")
    print(f"cold first visit      {cold:6.1f} s   navigation to Datasette's database page, empty browser profile")
    print(f"warm navigation       {statistics.median(warm) * 1000:6.0f} ms median of {len(warm)} (min {min(warm) * 1000:.0f}, max {max(warm) * 1000:.0f})")
    print(f"after worker restart  {restart:6.1f} s   first navigation after the Service Worker was stopped")
    print(f"page JS heap          {heap / 1e6:6.1f} MB  (the page only; Pyodide lives in the Service Worker)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
