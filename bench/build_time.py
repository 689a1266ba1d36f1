"""Benchmark: a build's time against a plain copy of the same database (issue 20: ratio <= 10).

Times, on one database file:

- the floor: Python's ``sqlite3`` backup API copying the file (``Connection.backup``), the
  cheapest safe copy of a SQLite database;
- builds: ``builder.director.BuildDirector`` run in-process, as the build task does,
  with local storage in a temporary folder (one store for all runs: the first build stores
  the shared runtime files, later ones find them), the Pyodide runtime and wheel cache of this
  checkout (the wheels and the compiled standard library are cached, as on a worker that
  has built before), no plugins, Datasette 0.65.5.

Every build-log line is timestamped, so the table shows each stage (the database check and
canonical copy, tables, data scan, Node's check, gzip and Brotli copies, upload) with the seconds
since the previous line. Prints figures; asserts nothing.

    .venv/bin/python bench/make_database.py /tmp/big.db     # 217 MB
    .venv/bin/python bench/build_time.py /tmp/big.db [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from builder.director import BuildDirector, BuildRequest
from builder.pyodide import PYODIDE_VERSION
from builder.storage import LocalStorage
from builder.wheels import sha256_file


def backup_seconds(database: Path, scratch: Path) -> float:
    """Seconds to copy ``database`` with the sqlite3 backup API into ``scratch`` (removed after)."""
    target = scratch / "backup.db"
    started = time.monotonic()
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    source.backup(copy)
    copy.close()
    source.close()
    seconds = time.monotonic() - started
    target.unlink()
    return seconds


def build_once(
    database: Path, scratch: Path, store: Path, build_id: str, lazy_min: int | None
) -> tuple[float, list[tuple[float, str]]]:
    """``(seconds, [(seconds since the previous line, line)])`` of build ``build_id`` of ``database`` into ``store``."""
    runtime = Path(os.environ.get("PYODIDE_RUNTIME_DIR", REPO / "var" / "runtime" / f"pyodide-{PYODIDE_VERSION}"))
    cache = Path(os.environ.get("WHEEL_CACHE_DIR", REPO / "var" / "cache" / "wheels"))
    lines: list[tuple[float, str]] = []
    started = last = time.monotonic()

    def log(line: str) -> None:
        nonlocal last
        now = time.monotonic()
        lines.append((now - last, line.splitlines()[0][:300]))
        last = now

    request = BuildRequest(
        build_id=build_id, database_path=database, database_name="big", title="Benchmark",
        description="", plugins=(), datasette_version="0.65.5", source_sha256=sha256_file(database),
        runtime_dir=runtime, cache_dir=cache, temp_dir=scratch, lazy_database_min_bytes=lazy_min,
    )  # fmt: skip
    BuildDirector(
        request, storage=LocalStorage(store), on_state=lambda state: log(f"[state: {state}]"), log=log
    ).run()
    seconds = time.monotonic() - started
    log("[build returned]")
    return seconds, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--runs", type=int, default=1, help="builds (and backup copies) to take the median of")
    parser.add_argument("--lazy-min-bytes", type=int, default=32 * 1024 * 1024,
                        help="LAZY_DATABASE_MIN_BYTES of the builds (default: the setting's default, 32 MiB)")  # fmt: skip
    args = parser.parse_args()
    size_mb = args.database.stat().st_size / 1e6
    backups, builds = [], []
    with tempfile.TemporaryDirectory(prefix="glasshouse-build-time-") as tmp:
        for run in range(args.runs):
            scratch = Path(tmp) / f"run{run}"
            scratch.mkdir()
            backups.append(backup_seconds(args.database, scratch))
            # One store for every run, as on a server: from the second build on, the shared runtime
            # files and their gzip and Brotli copies are already stored.
            seconds, lines = build_once(args.database, scratch, Path(tmp) / "store", f"bench{run:012d}", args.lazy_min_bytes)
            builds.append(seconds)
            print(f"Build {run + 1} of {args.database.name} ({size_mb:.0f} MB): {seconds:.1f} s")
            for delta, line in lines:
                print(f"  {delta:7.1f} s before: {line}")
    backup, build = statistics.median(backups), statistics.median(builds)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'database MB':>12} {'backup s':>9} {'build s':>8} {'build/backup':>13}  (target <= 10)")
    print(f"{size_mb:>12.0f} {backup:>9.1f} {build:>8.1f} {build / backup:>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
