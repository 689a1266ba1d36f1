"""Reader benchmark (issues 10 and 20): what a reader waits for, downloads and holds in memory, side by side
with what it is compared with, in one table.

Starts the real stack on loopback with the embedded defaults in a fresh folder under var/bench/:
gunicorn (app + content origins) and a solo Celery worker behind a counting proxy (bench/proxy.py:
every request the browser sends to the network, the Service Worker's included, is counted there),
publishes Chinook with ``manage.py publish --wait``, and drives Debian's headless Chromium through
Playwright, a fresh profile for every first visit. Native Datasette runs under uvicorn on the same
file the gallery serves, with the Datasette version of the build's lock file (a virtualenv under
var/bench/ from PyPI, made once) and the build's Datasette settings.

Per run (``--runs``, default 3; the table shows medians):
  * the runtime floor: a bare page on a gallery-like origin (``floor.localhost``, through the
    same proxy to the same server) that loads Pyodide from the build's runtime URLs and imports
    ``sqlite3``, fresh profile;
  * a cold first visit to the gallery's home, fresh profile: bytes and requests at the proxy,
    the browser's peak memory; Chromium asks for Brotli on ``*.localhost`` as over HTTPS, so these
    are the bytes of a browser that accepts br; then the visit's GETs are sent again through the
    proxy with ``GZIP_ONLY`` for the bytes of a browser that does not (plain HTTP elsewhere);
  * every warm URL once unmeasured, then once measured, in the gallery and in native Datasette;
  * the Service Worker stopped (CDP ``ServiceWorker.stopAllWorkers``), then the next navigation;
  * the browser closed and started again on the same profile, then a repeat visit.
Then the big database (bench/make_database.py, made once under var/bench/): build time against a
sqlite3 backup-API copy of the file, a cold visit with the browser's peak memory, and a warm
indexed query and full-text search against native Datasette. ``--1gb`` adds the largest database
the upload cap admits and says whether it opens.

Prints the table and the path of a JSON file with every sample; asserts nothing. Rows whose target
is missed are marked ``MISSED``.

    .venv/bin/python bench/readers.py [--runs N] [--skip-big] [--big-rows N] [--1gb] [--database PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote, urlencode

from browser import Session, VisitFailed, wait_for_snapshot
from make_database import generate
from playwright.sync_api import Playwright, sync_playwright
from processes import REPO
from proxy import FLOOR_LABEL, CountingProxy, Record, floor_page
from stack import RUNTIME_DIR, RUNTIME_FILES, GlasshouseStack, NativeDatasette, Published, datasette_venv

BENCH_DIR = REPO / "var" / "bench"
CHINOOK = REPO.parent / "shared" / "data" / "chinook.sqlite"
MB = 1e6
#: How long the network is still watched after a visit rendered (ms), for the requests the page and
#: the browser make after it, such as the Service Worker's update check.
SETTLE_MS = 2000
#: What Chromium sends over plain HTTP to a host that is not local: no br (it asks for br only over
#: HTTPS and on localhost). The cold visit's GETs are replayed with it for the gzip figure.
GZIP_ONLY = "gzip, deflate"
#: What Chromium sends over HTTPS (and on ``*.localhost``), for a visit whose browser did not ask for br.
WITH_BROTLI = "gzip, deflate, br, zstd"


# --- What to measure ---------------------------------------------------------------------------


def warm_paths(database: Path, name: str, count: int = 20) -> list[str]:
    """About ``count`` Datasette paths over ``database`` (served as ``name``): the database page, an
    SQL query, and for the largest tables in turn their page, sorted, filtered, faceted, a row,
    ``.json`` and ``.csv``. Chosen from the file's own schema and first rows, so any database works."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    virtual = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE 'CREATE VIRTUAL%'")]
    tables = [
        n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        if n not in virtual and not any(n.startswith(v + "_") for v in virtual)
    ]  # fmt: skip
    rows = {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    tables.sort(key=lambda t: -rows[t])
    base = f"/{quote(name)}"
    biggest = tables[0]
    paths = [base, base + "?" + urlencode({"sql": f'select * from "{biggest}" limit 50'})]
    per_table: list[list[str]] = []
    for table in tables[:4]:
        info = db.execute(f'PRAGMA table_info("{table}")').fetchall()  # cid, name, type, notnull, default, pk
        columns = [c[1] for c in info]
        pks = [c[1] for c in info if c[5]]
        first = db.execute(f'SELECT rowid, * FROM "{table}" LIMIT 1').fetchone()
        path = f"{base}/{quote(table)}"
        options = [path, f"{path}?_sort_desc={quote(columns[-1])}", f"{path}.json", f"{path}.csv"]
        text = next((c for c in info if "CHAR" in c[2].upper() or "TEXT" in c[2].upper()), None)
        if first and text:
            value = first[1 + columns.index(text[1])]
            if value is not None:
                options.append(f"{path}?" + urlencode({text[1]: value}))
        if rows[table] <= 100_000:
            distinct = sorted((db.execute(f'SELECT count(DISTINCT "{c}") FROM "{table}"').fetchone()[0], c) for c in columns)
            facet = next((c for n, c in distinct if 2 <= n <= 30), None)
            if facet:
                options.append(f"{path}?_facet={quote(facet)}")
        if first and len(pks) <= 1:
            key = first[0] if not pks else first[1 + columns.index(pks[0])]
            options.append(f"{path}/{quote(str(key))}")
        per_table.append(options)
    db.close()
    # Round-robin over the tables so each gets its share of the ``count``.
    for index in range(max(map(len, per_table))):
        paths += [options[index] for options in per_table if index < len(options)]
    return paths[:count]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summary(records: list[Record]) -> dict:
    """Bytes and requests of ``records``, with each request as ``{at, host, method, path, status, bytes, encoding}``."""
    return {
        "bytes": sum(r.bytes for r in records),
        "requests": len(records),
        "list": [asdict(r) for r in records],
    }


def first_visit_downloads(proxy: CountingProxy, records: list[Record]) -> dict:
    """The cold visit's bytes for a browser that accepts Brotli and for one that accepts only gzip.

    ``{"brotli": summary, "gzip": summary}``: the visit itself where the browser asked for br on
    every request (Chromium does on ``*.localhost``), else its GETs replayed with ``WITH_BROTLI``;
    and its GETs replayed through the proxy with ``GZIP_ONLY``."""
    asked_br = bool(records) and all("br" in r.accept_encoding for r in records)
    brotli = records if asked_br else proxy.replay(records, WITH_BROTLI)
    return {"brotli": summary(brotli), "brotli_from": "visit" if asked_br else "replay",
            "gzip": summary(proxy.replay(records, GZIP_ONLY))}  # fmt: skip


def compat_check_s(build_log: str) -> float | None:
    """Seconds of the build's Node compatibility check, from its line in the build log (None if absent)."""
    found = re.search(r"Compatibility check: .*? in (\d+) ms", build_log)
    return int(found.group(1)) / 1000 if found else None


def runtime_bytes() -> int:
    """Uncompressed bytes of Pyodide's npm runtime files (``RUNTIME_FILES``), the download ratio's reference."""
    return sum((RUNTIME_DIR / name).stat().st_size for name in RUNTIME_FILES)


# --- The measurements --------------------------------------------------------------------------


class Bench:
    """One benchmark run's shared state: the stack, Playwright, a scratch folder, the results."""

    def __init__(self, args: argparse.Namespace, playwright: Playwright, stack: GlasshouseStack, scratch: Path) -> None:
        self.args, self.playwright, self.stack, self.scratch = args, playwright, stack, scratch
        self.profiles = 0
        self.results: dict = {"errors": []}

    def note_error(self, where: str, error: Exception) -> None:
        message = f"{where}: {error}"
        print("  !", message, flush=True)
        self.results["errors"].append(message)

    def session(self, profile: Path | None = None) -> Session:
        if profile is None:
            self.profiles += 1
            profile = self.scratch / f"profile-{self.profiles}"
        return Session(self.playwright, profile)

    def native_for(self, published: Published, config: dict, label: str) -> tuple[NativeDatasette, Path, str]:
        """Download the gallery's database (the bytes readers get) and serve it with native Datasette."""
        name = Path(config["database"]["path"]).stem
        folder = self.scratch / label
        folder.mkdir()
        database = folder / f"{name}.db"
        with open(database, "wb") as out:
            out.write(published.get(config["database"]["url"]))
        lock = json.loads(published.get(config["lockFileURL"]))
        version = lock["packages"]["datasette"]["version"]
        exe = datasette_venv(version, BENCH_DIR)
        native = NativeDatasette(exe, database, config.get("settings", {}), config.get("metadata", {}), folder / "native.log")
        return native, database, version

    def floor_visit(self, timeout: float) -> float | None:
        session = self.session()
        try:
            return session.visit(f"http://{FLOOR_LABEL}.localhost:{self.stack.proxy.port}/", timeout)
        except VisitFailed as error:
            self.note_error("runtime floor", error)
            return None
        finally:
            session.close()

    def compare(self, session: Session, native: Session, gallery_url: str, native_url: str, paths: list[str],
                rounds: int) -> dict:  # fmt: skip
        """Navigate each of ``paths`` once unmeasured, then ``rounds`` times measured, alternating
        gallery and native; ``{"gallery": [ms], "native": [ms], "gallery_network": [[requests, bytes]],
        "status_differs": ["<path> (gallery <status>, native <status>)"]}`` (``gallery_network``: what the
        proxy saw during each measured gallery navigation: a lazy database's blocks, say)."""
        out: dict = {"gallery": [], "native": [], "gallery_network": [], "status_differs": []}
        for round_ in range(rounds + 1):
            for path in paths:
                try:
                    mark = self.stack.proxy.mark()
                    gallery_ms, gallery_status = session.navigation(gallery_url.rstrip("/") + path)
                    network = self.stack.proxy.since(mark)
                    native_ms, native_status = native.navigation(native_url.rstrip("/") + path)
                except VisitFailed as error:
                    self.note_error("warm navigation", error)
                    continue
                differs = f"{path} (gallery {gallery_status}, native {native_status})"
                if gallery_status != native_status and differs not in out["status_differs"]:
                    out["status_differs"].append(differs)
                if round_:
                    out["gallery"].append(gallery_ms)
                    out["native"].append(native_ms)
                    out["gallery_network"].append([len(network), sum(r.bytes for r in network)])
        return out

    def gallery_run(self, published: Published, native_url: str, paths: list[str], timeout: float) -> dict:
        """One fresh-profile session of the gallery: cold visit, warm navigations, a Service Worker
        restart, then a browser restart on the same profile with a repeat visit."""
        proxy = self.stack.proxy
        run: dict = {}
        session = self.session()
        profile = session.profile
        try:
            session.page.goto("about:blank")
            idle = session.memory.idle()
            session.memory.reset()
            mark = proxy.mark()
            run["cold_s"] = session.visit(published.url, timeout)
            run["cold_phases"] = session.phases
            session.page.wait_for_timeout(SETTLE_MS)  # requests the rendered page still makes
            run["first_visit"] = summary(proxy.since(mark))
            run["first_visit_by_encoding"] = first_visit_downloads(proxy, proxy.since(mark))
            run["peak_memory_bytes"] = max(session.memory.peak - idle, 0)
            run["peak_memory_by_kind"] = session.memory.peak_by_kind
            run["idle_memory_bytes"] = idle
            native = Session(self.playwright, self.scratch / f"native-{self.profiles}")
            try:
                run["warm"] = self.compare(session, native, published.url, native_url, paths, rounds=1)
            finally:
                native.close()
            # The runtime saves its memory snapshot once idle after the first boot: the restart figure
            # is the one a reader meets after that (None: no snapshot within 60 s, a normal boot).
            run["snapshot_wait_s"] = wait_for_snapshot(session.page, 60)
            run["cold_console"] = list(session.console)
            session.stop_service_workers()
            mark = proxy.mark()
            console_mark = len(session.console)
            run["sw_restart_s"] = session.visit(published.url, timeout)
            run["sw_restart_console"] = session.console[console_mark:]
            session.page.wait_for_timeout(SETTLE_MS)  # the browser's own follow-ups (the sw.js update check)
            run["sw_restart_network"] = summary(proxy.since(mark))
        except VisitFailed as error:
            self.note_error("gallery visit", error)
        finally:
            session.close()
        if "sw_restart_s" in run:
            session = self.session(profile)
            try:
                mark = proxy.mark()
                run["browser_restart_s"] = session.visit(published.url, timeout)
                session.page.wait_for_timeout(SETTLE_MS)
                run["browser_restart_network"] = summary(proxy.since(mark))
            except VisitFailed as error:
                self.note_error("repeat visit after a browser restart", error)
            finally:
                session.close()
        return run

    def chinook(self) -> None:
        args = self.args
        print(f"Publishing {args.database.name} ...", flush=True)
        published = self.stack.publish(args.database, args.plugin, timeout=1800)
        config = published.config()
        self.stack.proxy.floor_host = published.host
        self.stack.proxy.floor_html = floor_page(config["runtimeURL"], config["lockFileURL"], config.get("stdLibURL"))
        native, database, version = self.native_for(published, config, "chinook")
        try:
            paths = warm_paths(database, Path(config["database"]["path"]).stem)
            self.results["chinook"] = out = {
                "database": str(args.database), "database_bytes": database.stat().st_size, "datasette": version,
                "plugins": args.plugin, "build_s": published.seconds, "build_log": published.output, "warm_paths": paths, "floor_s": [], "runs": [],
                "runtime_bytes": runtime_bytes(),
            }  # fmt: skip
            for number in range(1, args.runs + 1):
                print(f"Run {number} of {args.runs}: runtime floor, then the gallery ...", flush=True)
                floor = self.floor_visit(args.timeout)
                if floor is not None:
                    out["floor_s"].append(floor)
                run = self.gallery_run(published, native.url, paths, args.timeout)
                out["runs"].append(run)
                print(f"  floor {floor and round(floor, 2)} s, cold {run.get('cold_s') and round(run['cold_s'], 2)} s, "
                      f"SW restart {run.get('sw_restart_s') and round(run['sw_restart_s'], 2)} s", flush=True)  # fmt: skip
        finally:
            native.close()

    def big(self, rows: int, label: str, timeout: float) -> None:
        """Build, open and query a generated database of ``rows`` rows (results under ``label``)."""
        database = BENCH_DIR / f"observations-{rows}.db"
        if not database.exists():
            print(f"Generating {database} ({rows:,} rows; kept for later runs) ...", flush=True)
            started = time.monotonic()
            partial = database.with_suffix(".partial")
            partial.unlink(missing_ok=True)  # left by an interrupted run
            generate(partial, rows)
            partial.rename(database)
            print(f"  {time.monotonic() - started:.0f} s", flush=True)
        out: dict = {"database": str(database), "rows": rows, "database_bytes": database.stat().st_size}
        self.results[label] = out
        copy = self.scratch / f"{label}-backup.db"
        started = time.monotonic()
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        out["backup_copy_s"] = time.monotonic() - started
        copy.unlink()
        print(f"Publishing {database.name} ({out['database_bytes'] / MB:.0f} MB) ...", flush=True)
        try:
            published = self.stack.publish(database, [], timeout=3600)
        except SystemExit as error:
            self.note_error(f"{label} build", error)
            return
        out["build_s"] = published.seconds
        out["build_log"] = published.output
        config = published.config()
        native, _served, _version = self.native_for(published, config, label)
        name = Path(config["database"]["path"]).stem
        try:
            session = self.session()
            try:
                session.page.goto("about:blank")
                idle = session.memory.idle()
                session.memory.reset()
                mark = self.stack.proxy.mark()
                print(f"Cold visit to the {label} gallery ...", flush=True)
                out["cold_s"] = session.visit(published.url, timeout)
                session.page.wait_for_timeout(SETTLE_MS)
                out["first_visit"] = summary(self.stack.proxy.since(mark))
                # The database's own bytes on the first page: its blocks (ranged GETs) if it is read lazily.
                database_url = config["database"]["url"]
                fetched = [r for r in self.stack.proxy.since(mark) if r.path.split("?", 1)[0] == database_url]
                out["database_first_page"] = {"requests": len(fetched), "bytes": sum(r.bytes for r in fetched),
                                              "ranged": sum(1 for r in fetched if r.status == 206)}  # fmt: skip
                out["first_visit_by_encoding"] = first_visit_downloads(self.stack.proxy, self.stack.proxy.since(mark))
                native_session = Session(self.playwright, self.scratch / f"native-{label}")
                try:
                    for key, path in (("indexed", f"/{name}/observations?station=ST0042"),
                                      ("search", f"/{name}/observations?_search=thunder")):  # fmt: skip
                        out[key] = self.compare(session, native_session, published.url, native.url, [path], self.args.runs)
                finally:
                    native_session.close()
                out["peak_memory_bytes"] = max(session.memory.peak - idle, 0)
                out["peak_memory_by_kind"] = session.memory.peak_by_kind
                out["idle_memory_bytes"] = idle
                out["cold_console"] = list(session.console)
            except VisitFailed as error:
                out["peak_memory_bytes"] = max(session.memory.peak - idle, 0)
                out["failed"] = str(error)
                self.note_error(f"{label} visit", error)
            finally:
                session.close()
        finally:
            native.close()


# --- The table ---------------------------------------------------------------------------------


def _ratio_row(figure: str, value: float | None, unit: str, against: str, reference: float | None,
               target: float | None, fmt: str = "{:.2f}", extra_ok: bool = True) -> list[str]:  # fmt: skip
    ratio = value / reference if value is not None and reference else None
    missed = ratio is not None and target is not None and (ratio > target or not extra_ok)
    show = lambda v: "—" if v is None else fmt.format(v) + (" " + unit if unit else "")
    return [figure, show(value), against, show(reference), "—" if ratio is None else f"{ratio:.2f}",
            "—" if target is None else f"<= {target:g}", "MISSED" if missed else ""]  # fmt: skip


def table(results: dict) -> list[list[str]]:
    """The rows of the printed table: figure, measured, compared with, its value, ratio, target, mark."""
    rows: list[list[str]] = []
    chinook = results.get("chinook")
    if chinook:
        runs = chinook["runs"]
        pick = lambda key: [r[key] for r in runs if key in r]
        cold, floor = median(pick("cold_s")), median(chinook["floor_s"])
        rows.append(_ratio_row("cold first visit", cold, "s", "runtime floor", floor, 1.5))
        first = [r["first_visit"] for r in runs if "first_visit" in r]
        reference = chinook["runtime_bytes"] + chinook["database_bytes"]
        by_encoding = [r["first_visit_by_encoding"] for r in runs if "first_visit_by_encoding" in r]
        for encoding, label in (("gzip", "first-visit download, gzip only"),
                                ("brotli", "first-visit download, browser accepting br")):  # fmt: skip
            rows.append(_ratio_row(label, median([f[encoding]["bytes"] / MB for f in by_encoding]), "MB",
                                   "Pyodide runtime + database, raw", reference / MB, 0.6, fmt="{:.2f}"))  # fmt: skip
        rows.append(["first-visit requests", f"{median([f['requests'] for f in first]) or 0:.0f}", "", "", "", "", ""])
        gallery = [ms for r in runs if "warm" in r for ms in r["warm"]["gallery"]]
        native = [ms for r in runs if "warm" in r for ms in r["warm"]["native"]]
        for label, fraction, target in (("p50", 0.5, 1.25), ("p95", 0.95, 2.0)):
            rows.append(_ratio_row(f"warm navigation {label} (n={len(gallery)})", gallery and percentile(gallery, fraction), "ms",
                                   f"native Datasette {chinook['datasette']}", native and percentile(native, fraction), target,
                                   fmt="{:.0f}"))  # fmt: skip
        restart = median(pick("sw_restart_s"))
        rows.append(_ratio_row("Service Worker restart, next navigation", restart, "s", "runtime floor", floor, 0.6))
        rows.append(_ratio_row("  the same against the cold first visit", restart, "s", "cold first visit", cold, None))
        for key, label in (("sw_restart_network", "network, next navigation after SW restart"),
                           ("browser_restart_network", "network, repeat visit after browser restart")):  # fmt: skip
            summaries = [r[key] for r in runs if key in r]
            if summaries:
                # "Downloads nothing but sw.js": a revalidation answered 304 downloads no body.
                downloaded = {e["path"] for s in summaries for e in s["list"] if e["bytes"] > 0}
                measured = f"{median([s['requests'] for s in summaries]):.0f} requests, {median([s['bytes'] for s in summaries]):,.0f} B"
                rows.append([label, measured, "", "", "", "only /sw.js downloaded", "" if downloaded <= {"/sw.js"} else "MISSED"])
        browser_restart = median(pick("browser_restart_s"))
        rows.append(_ratio_row("repeat visit after browser restart", browser_restart, "s", "cold first visit", cold, None))
        peak = median([r["peak_memory_bytes"] / MB for r in runs if "peak_memory_bytes" in r])
        rows.append(_ratio_row("browser peak memory, cold visit", peak, "MB", "", None, None, fmt="{:.0f}"))
        rows.append(_ratio_row("build (publish --wait)", chinook["build_s"], "s", "", None, None, fmt="{:.0f}"))
        node = compat_check_s(chinook.get("build_log", ""))
        if node is not None:
            rows.append(_ratio_row("  of which the Node compatibility check", node, "s", "", None, None, fmt="{:.0f}"))
    for label in ("big", "1gb"):
        big = results.get(label)
        if not big:
            continue
        size = big["database_bytes"] / MB
        name = f"{label} ({big['rows'] / 1e6:g}M rows, {size:.0f} MB)"
        rows.append(_ratio_row(f"{name}: build", big.get("build_s"), "s", "sqlite3 backup-API copy", big["backup_copy_s"],
                               10.0, fmt="{:.1f}"))  # fmt: skip
        node = compat_check_s(big.get("build_log", ""))
        if node is not None:
            rows.append(_ratio_row("  of which the Node compatibility check", node, "s", "", None, None, fmt="{:.1f}"))
        if "failed" in big:
            rows.append([f"{name}: cold visit", "FAILED", big["failed"][:60], "", "", "", "MISSED"])
        if "cold_s" in big:
            rows.append(_ratio_row(f"{name}: cold first visit", big["cold_s"], "s", "", None, None, fmt="{:.1f}"))
            fetched = big.get("database_first_page")
            if fetched is not None:
                rows.append(_ratio_row(f"{name}: database bytes fetched, first page ({fetched['ranged']} ranges)",
                                       fetched["bytes"] / MB, "MB", "database size", size, 0.05, fmt="{:.2f}"))  # fmt: skip
            for encoding, what in (("gzip", "gzip only"), ("brotli", "browser accepting br")):
                downloaded = big.get("first_visit_by_encoding", {}).get(encoding, {}).get("bytes")
                rows.append(_ratio_row(f"{name}: first-visit download, {what}", downloaded and downloaded / MB, "MB",
                                       "Pyodide runtime + database, raw", (runtime_bytes() + big["database_bytes"]) / MB,
                                       0.6, fmt="{:.0f}"))  # fmt: skip
        for key, what in (("indexed", "warm indexed query p50"), ("search", "warm full-text search p50")):
            if key in big and big[key]["gallery"]:
                network = big[key].get("gallery_network") or []
                fetched = f" ({median([n[0] for n in network]):.0f} requests, {median([n[1] for n in network]) / MB:.1f} MB)" if network else ""
                rows.append(_ratio_row(f"{name}: {what}{fetched}", median(big[key]["gallery"]), "ms", "native Datasette",
                                       median(big[key]["native"]), None, fmt="{:.0f}"))  # fmt: skip
        if "peak_memory_bytes" in big:
            rows.append(_ratio_row(f"{name}: browser peak memory", big["peak_memory_bytes"] / MB, "MB", "database size", size,
                                   0.5, fmt="{:.0f}"))  # fmt: skip
    return rows


def repeat_visit_requests(results: dict) -> list[str]:
    """One line per request of the last run's repeat visits: ``<visit>: <status> <path> <bytes> B``."""
    runs = results.get("chinook", {}).get("runs", [])
    lines = []
    for key, label in (("sw_restart_network", "after SW restart"), ("browser_restart_network", "after browser restart")):
        for entry in next((r[key]["list"] for r in reversed(runs) if key in r), []):
            lines.append(f"  {label}: {entry['status']} {entry['method']} {entry['path']} {entry['bytes']:,} B")
    return lines


def cold_timeline(results: dict) -> list[str]:
    """Where the Chinook cold visit's time goes: one line per phase the bootstrap page showed
    (``Session.visit``'s ``phases``), with the median second it was first seen and the median
    time until the next phase, over the runs that saw it, in the order of those medians (a phase
    shown for less than the 30 ms poll is missed in some runs)."""
    runs = [r["cold_phases"] for r in results.get("chinook", {}).get("runs", []) if r.get("cold_phases")]
    starts: dict[str, list[float]] = {}
    spans: dict[str, list[float]] = {}
    for phases in runs:
        for (label, at), (_next, until) in zip(phases, [*phases[1:], (None, None)], strict=True):
            starts.setdefault(label, []).append(at)
            if until is not None:
                spans.setdefault(label, []).append(until - at)
    return [
        f"  {median(starts[label]):6.2f} s  {label}" + (f"  (then {median(spans[label]):.2f} s)" if label in spans else "")
        for label in sorted(starts, key=lambda label: median(starts[label]))
    ]


#: (kind, how a first-visit URL path is recognised), first match wins.
DOWNLOAD_KINDS = (
    ("Pyodide wasm", lambda path: path.endswith(".wasm")),
    ("compiled standard library", lambda path: path.endswith("python_stdlib.zip")),
    ("Pyodide JavaScript and lock", lambda path: path.startswith("/_runtime/")),
    ("site-packages bytecode", lambda path: path.endswith("/bytecode.zip")),
    ("wheels", lambda path: path.startswith("/_wheels/")),
    ("database", lambda path: "/data/" in path),
    ("Datasette static files", lambda path: path.startswith("/-/static")),
    ("runtime scripts and pages", lambda path: True),
)


def download_by_kind(results: dict) -> list[str]:
    """The Chinook first visit's bytes by kind of file (median over runs, MB and requests), largest first."""
    per_kind: dict[str, list[tuple[int, int]]] = {}
    runs = [r["first_visit"]["list"] for r in results.get("chinook", {}).get("runs", []) if "first_visit" in r]
    for entries in runs:
        totals = {kind: [0, 0] for kind, _match in DOWNLOAD_KINDS}
        for entry in entries:
            kind = next(kind for kind, match in DOWNLOAD_KINDS if match(entry["path"]))
            totals[kind][0] += entry["bytes"]
            totals[kind][1] += 1
        for kind, (size, count) in totals.items():
            per_kind.setdefault(kind, []).append((size, count))
    rows = [(median([s for s, _ in v]) or 0, median([c for _, c in v]) or 0, kind) for kind, v in per_kind.items()]
    return [f"  {size / MB:6.2f} MB  {count:3.0f} requests  {kind}" for size, count, kind in sorted(rows, reverse=True) if count]


def memory_by_kind(results: dict) -> list[str]:
    """At each measured peak, the browser's PSS per process kind (MB, idle not taken off): Chinook's last run, the big databases."""
    lines = []
    sources = [("Chinook", next((r for r in reversed(results.get("chinook", {}).get("runs", [])) if "peak_memory_by_kind" in r), {}))]
    sources += [(label, results[label]) for label in ("big", "1gb") if label in results]
    for label, source in sources:
        kinds = source.get("peak_memory_by_kind")
        if kinds:
            parts = ", ".join(f"{kind} {size / MB:.0f}" for kind, size in sorted(kinds.items(), key=lambda item: -item[1]))
            lines.append(f"  {label}: {parts} (idle {source.get('idle_memory_bytes', 0) / MB:.0f} MB before)")
    return lines


def build_stages(results: dict) -> list[str]:
    """Each benchmarked build's Node check stages, as its build log gives them (``builder.compat``)."""
    lines = []
    for label in ("chinook", "big", "1gb"):
        found = re.search(r"^Compatibility check stages: (.*)$", results.get(label, {}).get("build_log", ""), re.MULTILINE)
        if found:
            lines.append(f"  {label}: {found.group(1)}")
    return lines


def runtime_lines(results: dict) -> list[str]:
    """The runtime's own console lines of the last Chinook run: the cold boot's, then the restart's."""
    runs = [r for r in results.get("chinook", {}).get("runs", []) if "cold_console" in r]
    if not runs:
        return []
    last = runs[-1]
    return [f"  cold visit: {line}" for line in last["cold_console"]] + [
        f"  after the SW restart: {line}" for line in last.get("sw_restart_console", [])
    ]


def print_table(rows: list[list[str]]) -> None:
    header = ["figure", "measured", "compared with", "value", "ratio", "target", ""]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


DEFINITIONS = """\
Definitions: times are medians over the runs. Cold first visit: wall clock from goto to Datasette's
page rendered, empty profile. Runtime floor: the same for a bare page loading the build's Pyodide and
importing sqlite3. Download: body bytes the proxy sent to the browser (gzip and Brotli copies count
compressed), Service Worker included, against npm's Pyodide runtime files + the database, uncompressed;
"browser accepting br" is the cold visit itself (Chromium asks for br on *.localhost, as every browser
does over HTTPS), "gzip only" the same GETs sent again through the proxy with "Accept-Encoding: gzip,
deflate" (what Chromium sends over plain HTTP elsewhere). Warm
navigation: Navigation Timing loadEventEnd of each URL, gallery (Service Worker) and native Datasette
(uvicorn) alternating, one unmeasured pass first; p50/p95 over all runs' samples. Browser peak memory:
the largest summed PSS of every process of that Chromium (browser, renderers, GPU, utility), sampled
every 0.1 s during the cold visit (and the big database's queries), minus the same browser's idle
figure on about:blank just before."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs to take medians over (default 3)")
    parser.add_argument("--database", type=Path, default=CHINOOK, help="the gallery for the main figures (Chinook)")
    parser.add_argument("--plugin", action="append", default=[], help="catalog plugin for that gallery; repeat")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a Chinook visit may take")
    parser.add_argument("--skip-chinook", action="store_true", help="leave out the main gallery (only the big database)")
    parser.add_argument("--skip-big", action="store_true", help="leave out the big database")
    parser.add_argument("--big-rows", type=int, default=2_000_000, help="rows of the big database (2,000,000 = 217 MB)")
    parser.add_argument("--big-timeout", type=float, default=900, help="seconds a big database's cold visit may take")
    parser.add_argument("--1gb", dest="one_gb", action="store_true",
                        help="also build and open the largest database under the 1 GiB upload cap (--1gb-rows)")  # fmt: skip
    parser.add_argument("--1gb-rows", dest="one_gb_rows", type=int, default=9_500_000,
                        help="rows for --1gb (9,500,000 is about 1.03 GB, under the cap of 1,073,741,824 bytes)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, data, profiles)")
    args = parser.parse_args()
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so every server and browser is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_DIR))
    started = time.monotonic()
    stack = GlasshouseStack(scratch)
    bench: Bench | None = None
    try:
        stack.start()
        with sync_playwright() as playwright:
            bench = Bench(args, playwright, stack, scratch)
            if not args.skip_chinook:
                bench.chinook()
            if not args.skip_big:
                bench.big(args.big_rows, "big", args.big_timeout)
            if args.one_gb:
                bench.big(args.one_gb_rows, "1gb", args.big_timeout * 2)
    except KeyboardInterrupt:
        print("Interrupted; stopping the servers and browsers.", file=sys.stderr)
        return 130
    finally:
        stack.close()
        if args.keep:
            print(f"Kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if bench is None:
        return 1
    results = bench.results
    results["seconds"] = time.monotonic() - started
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    results["date"] = stamp
    out = BENCH_DIR / f"readers-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print()
    print_table(table(results))
    print()
    runs = results.get("chinook", {}).get("runs", [])
    differs = sorted({d for r in runs if "warm" in r for d in r["warm"]["status_differs"]})
    if differs:
        print("Warm URLs answered with another status than native Datasette's:\n  " + "\n  ".join(differs) + "\n")
    for title, lines in (
        ("First-visit download by kind of file (Chinook, median of the runs):", download_by_kind(results)),
        ("Browser memory at the peak, per Chromium process kind (MB):", memory_by_kind(results)),
        ("The runtime's console on the last Chinook run:", runtime_lines(results)),
        ("The builds' Node compatibility check, by stage:", build_stages(results)),
    ):
        if lines:
            print(title + "\n" + "\n".join(lines) + "\n")
    timeline = cold_timeline(results)
    if timeline:
        print("Cold first visit, the bootstrap page's phases (median second first seen since goto):\n" + "\n".join(timeline) + "\n")
    requests = repeat_visit_requests(results)
    if requests:
        print("Requests on the last run's repeat visits (a 304 downloads no body):\n" + "\n".join(requests) + "\n")
    print(DEFINITIONS)
    if results["errors"]:
        print("\nErrors:\n  " + "\n  ".join(results["errors"]))
    print(f"\nAll samples: {out}  ({results['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
