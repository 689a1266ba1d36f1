"""Benchmark: a big database in the reader's browser: cold visit, warm queries, the tab's peak memory.

Publishes ``--database`` (default: a database from ``bench/make_database.py``, whose
``observations`` table is indexed on ``station`` and has the FTS table ``observations_fts``) on a
fresh local Glasshouse (``cold_start.published``), opens it in Debian's headless Chromium and
prints (an on-disk profile unless ``--incognito``):

- the cold first visit (s): navigation to the database page with an empty profile, until the page
  is Datasette's;
- a warm indexed query (``observations?station=ST0042``) and a warm full-text search
  (``observations?_search=thunder``): the first answer, then the median of ``--runs`` more (ms);
- memory (MB): the proportional set size (PSS, ``/proc/<pid>/smaps_rollup``) of Chromium's processes,
  sampled every 0.2 s from launch to the end, minus the same sum while idle on ``about:blank``.
  "renderers" sums the ``--type=renderer`` processes (the page and the Service Worker, where
  Pyodide and the database live); "all" adds the browser, network and utility processes (Cache
  Storage writes go through them). Each is divided by the database's size (issue 10's target:
  renderers' peak <= 2.5 x).

With ``--json PATH`` the figures are also written as JSON. Prints figures; asserts nothing.
Linux only (reads ``/proc``).

    .venv/bin/python bench/big_database.py [--database /tmp/bigdb/big.db] [--runs 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cold_start import CHROMIUM_ARGS, published  # a sibling script: bench/ is sys.path[0]
from playwright.sync_api import Error as PlaywrightError

MB = 1e6
INDEXED_QUERY = "observations?station=ST0042"
FULL_TEXT_SEARCH = "observations?_search=thunder"
#: A database past the default upload cap: raise it to the hard cap and give the build time.
BIG_ENV = {"UPLOAD_MAX_BYTES": str(1024**3), "BUILD_SOFT_TIME_LIMIT": "3000", "BUILD_HARD_TIME_LIMIT": "3600"}


def _children() -> dict[int, list[int]]:
    """Every process's children (``{ppid: [pid]}``) from ``/proc/<pid>/stat``."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def chromium_pss(root: int | None = None) -> tuple[int, int]:
    """PSS in bytes of the Chromium descendants of ``root`` (default: this process): ``(renderers, all)``."""
    tree = _children()
    todo, renderers, total = list(tree.get(root or os.getpid(), [])), 0, 0
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"chrom" not in cmdline.split(b"\0", 1)[0]:
                continue
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        pss = next((int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")), 0)
        total += pss
        if b"--type=renderer" in cmdline:
            renderers += pss
    return renderers, total


class PeakSampler(threading.Thread):
    """Samples ``chromium_pss`` every ``interval`` s until ``stop()``; keeps the peaks (bytes)."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak_renderers, self.peak_all = interval, 0, 0
        self._done = threading.Event()  # not `_stop`: threading.Thread has a method of that name

    def run(self) -> None:
        while not self._done.is_set():
            renderers, total = chromium_pss()
            self.peak_renderers, self.peak_all = max(self.peak_renderers, renderers), max(self.peak_all, total)
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


#: The bootstrap page's state in one line (its phase, detail and any visible problem); null on another page.
STATUS_JS = """() => {
  if (!document.getElementById("phase")) return null;
  const text = (id) => (document.getElementById(id) || {}).textContent || "";
  const problem = document.getElementById("problem");
  return `${text("phase")} | ${text("detail")}` + (problem && !problem.hidden ? ` | problem: ${problem.textContent}` : "");
}"""


def timed_goto(page: object, url: str) -> float:
    """Seconds from navigation to ``url`` until Datasette's table page is there; raises on an error page."""
    started = time.monotonic()
    page.goto(url, timeout=900_000)
    shown = None
    # The bootstrap page (a cold visit) shows #phase until Datasette's page replaces it, or #problem.
    while True:
        try:
            status = page.evaluate(STATUS_JS)
        except PlaywrightError:  # the bootstrap page navigated to Datasette's during the call
            time.sleep(0.2)
            continue
        if status is None:
            break
        if status != shown:
            print(f"  {time.monotonic() - started:6.1f} s  {status}", flush=True)
            shown = status
        if "problem:" in status or time.monotonic() - started > 1800:
            raise SystemExit(f"{url}: the gallery did not open: {status}")
        time.sleep(1)
    page.wait_for_load_state()
    seconds = time.monotonic() - started
    if "could not start" in page.title() or "could not start" in page.content()[:3000]:
        raise SystemExit(f"{url}: the gallery failed: {page.inner_text('body')[:600]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=Path("/tmp/bigdb/big.db"))
    parser.add_argument("--runs", type=int, default=5, help="warm repetitions of each query")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--incognito", action="store_true", help="Playwright's incognito context (storage in memory)")
    args = parser.parse_args()
    size = args.database.stat().st_size

    from playwright.sync_api import sync_playwright

    with (
        published(args.database, [], BIG_ENV) as gallery,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="big-database-profile-") as profile,
    ):
        if args.incognito:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_context().new_page()
        else:
            # A reader's ordinary profile: Cache Storage on disk (an incognito context keeps it in memory).
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            page = browser.new_page()
        page.on("console", lambda m: print(f"  console: {m.text}") if "Glasshouse" in m.text else None)
        page.goto("about:blank")
        time.sleep(2)
        idle_renderers, idle_all = chromium_pss()
        sampler = PeakSampler()
        sampler.start()
        try:
            cold = timed_goto(page, gallery.url + gallery.database)
            after_boot = chromium_pss()
            queries = {}
            for name, path in (("indexed", INDEXED_QUERY), ("fts", FULL_TEXT_SEARCH)):
                first = timed_goto(page, f"{gallery.url}{gallery.database}/{path}")
                warm = [timed_goto(page, f"{gallery.url}{gallery.database}/{path}") for _ in range(args.runs)]
                queries[name] = {"first_ms": first * 1000, "median_ms": statistics.median(warm) * 1000, "runs": len(warm)}
        finally:
            sampler.stop()
            browser.close()

    figures = {
        "database": str(args.database),
        "database_bytes": size,
        "build_seconds": gallery.build_seconds,
        "first_visit_bytes": gallery.first_visit_bytes,
        "cold_visit_seconds": cold,
        "queries": queries,
        "idle_pss": {"renderers": idle_renderers, "all": idle_all},
        "after_boot_pss": {"renderers": after_boot[0], "all": after_boot[1]},
        "peak_pss": {"renderers": sampler.peak_renderers, "all": sampler.peak_all},
    }
    print(f"database             {args.database.name}: {size / MB:.1f} MB")
    print(f"build (publish)      {gallery.build_seconds:7.1f} s")
    print(f"cold first visit     {cold:7.1f} s")
    for name, label in (("indexed", INDEXED_QUERY), ("fts", FULL_TEXT_SEARCH)):
        q = queries[name]
        print(f"warm {name:<15} {q['median_ms']:7.0f} ms median of {q['runs']} (first {q['first_ms']:.0f} ms)  {label}")
    for label, idle, now, peak in (
        ("renderers", idle_renderers, after_boot[0], sampler.peak_renderers),
        ("all Chromium", idle_all, after_boot[1], sampler.peak_all),
    ):
        print(
            f"PSS {label:<16} idle {idle / MB:6.0f} MB, after boot {(now - idle) / MB:6.0f} MB above idle, "
            f"peak {(peak - idle) / MB:6.0f} MB above idle = {(peak - idle) / size:4.2f} x the database"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
