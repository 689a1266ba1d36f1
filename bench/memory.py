"""Benchmark: the build worker's peak memory against the database's size.

For each size (MB) it generates a SQLite database of that size (random text, so nothing
compresses away), then runs the real build task (``worker_shell.tasks.build_gallery``) on it in
a fresh process, as a worker process does: download from storage, validate, bundle, the Node
compatibility check (its heap capped by ``BUILD_NODE_MAX_OLD_SPACE_MB``), upload, publish.
Embedded defaults in a temporary data folder (SQLite, local storage). The task is called
in-process, so one process's figures are one build's.

Peaks come from ``getrusage``: ``RUSAGE_SELF`` for the worker process (Django, Celery and the
build), ``RUSAGE_CHILDREN`` for the largest child it waited for (Node; pip only on a cold wheel
cache). They are per process: ``worker + Node`` adds two peaks that need not coincide, an upper
bound of the build's footprint. Prints figures; asserts nothing.

    .venv/bin/python bench/memory.py [--sizes 1,20,100] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import RUNTIME_DIR

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def make_database(path: Path, size_mb: int) -> Path:
    """Write a SQLite database of about ``size_mb`` MB (``rows``: id, name, note, amount) at ``path``."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT, note TEXT, amount REAL)")
    done = 0
    while path.stat().st_size < size_mb * MB:
        batch = [(f"row {n}", secrets.token_hex(200), n * 0.25) for n in range(done, done + 500)]
        conn.executemany("INSERT INTO rows (name, note, amount) VALUES (?, ?, ?)", batch)
        conn.commit()
        done += len(batch)
    conn.close()
    return path


def peak_mb(who: int) -> float:
    """Peak resident set size of ``RUSAGE_SELF`` or ``RUSAGE_CHILDREN`` in MB (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def child(database: Path) -> None:
    """Run one build of ``database`` in this process and print its figures as one JSON line."""
    import worker_shell.celery  # noqa: F401  (sets up Django, as the worker does)
    from gallery.models import Build, BuildState, Gallery, database_name_for
    from gallery.storage import get_storage
    from worker_shell import tasks

    baseline = peak_mb(resource.RUSAGE_SELF)
    gallery = Gallery.objects.create(title=database.stem, database_name=database_name_for(database.name))
    build = Build.objects.create(
        gallery=gallery, state=BuildState.QUEUED, source_key="", source_sha256="0" * 64,
        source_bytes=database.stat().st_size,
    )  # fmt: skip
    build.source_key = f"uploads/{build.id}/source.db"
    build.save(update_fields=["source_key"])
    get_storage().put_file(build.source_key, database)
    started = time.monotonic()
    state = tasks.build_gallery(build.id)  # the task's body, run here: no broker, no eager mode
    build.refresh_from_db()
    print(json.dumps({
        "state": state, "reason": build.failure_reason, "seconds": round(time.monotonic() - started, 1),
        "baseline_mb": baseline, "worker_mb": peak_mb(resource.RUSAGE_SELF),
        "node_mb": peak_mb(resource.RUSAGE_CHILDREN),
    }))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,20,100", help="database sizes in MB, comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    sizes = [int(size) for size in args.sizes.split(",")]
    data = Path(tempfile.mkdtemp(prefix="glasshouse-memory-"))
    env = dict(os.environ, GLASSHOUSE_DATA_DIR=str(data), PYTHONPATH=str(REPO))
    env.setdefault("PYODIDE_RUNTIME_DIR", str(RUNTIME_DIR))
    env.setdefault("WHEEL_CACHE_DIR", str(REPO / "var" / "cache" / "wheels"))
    for name in ("DATABASE_URL", "REDIS_URL", "S3_BUCKET"):
        env.pop(name, None)
    rows = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
        for size in sizes:
            database = make_database(data / f"generated-{size}mb.db", size)
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(database)], cwd=REPO, env=env, capture_output=True, text=True,
                check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"the build of {database.name} crashed:\n{proc.stdout}{proc.stderr}")
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((database.stat().st_size / MB, figures))
            database.unlink()
    finally:
        if args.keep:
            print(f"data folder kept: {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)

    node_cap = env.get("BUILD_NODE_MAX_OLD_SPACE_MB", "256 (default)")
    print(f"Peak resident memory of one build (MB); Node's heap capped at {node_cap} MB")
    print(f"{'database':>9} {'build s':>8} {'state':>6} {'at start':>9} {'worker':>7} {'Node':>7} {'worker+Node':>12} {'ratio':>6}")
    for size, f in rows:
        total = f["worker_mb"] + f["node_mb"]
        print(
            f"{size:>9.1f} {f['seconds']:>8.1f} {f['state']:>6} {f['baseline_mb']:>9.0f} {f['worker_mb']:>7.0f} "
            f"{f['node_mb']:>7.0f} {total:>12.0f} {total / size:>6.1f}"
        )
        if f["state"] != "ready":
            print(f"          failed: {f['reason']}")
    if len(rows) > 1:
        (small, first), (large, last) = rows[0], rows[-1]
        growth = (last["worker_mb"] + last["node_mb"] - first["worker_mb"] - first["node_mb"]) / (large - small)
        print(f"Growth from {small:.0f} to {large:.0f} MB: {growth:.2f} MB of memory per MB of database.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
