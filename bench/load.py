"""Load benchmark: N concurrent uploads through the publish form, every build followed to its end.

Starts the production stack on loopback, each part on a free port: moto's S3 server
(its own bucket), ``manage.py migrate`` into its own PostgreSQL database (dropped and
created afresh), gunicorn with 2 web workers (deploy/gunicorn.conf.py), one Celery
worker node with the prefork pool and 2 worker processes, and Celery beat (it sends
whatever periodic tasks worker_shell.celery schedules), on its own Redis db (flushed).
Then N clients at once each GET /publish/ (the CSRF cookie and the form's fields) and
POST the form as multipart with ``Accept: application/json``, as the page's script
does, and poll their build's status JSON every second, as the build page does.

The uploads alternate between the Chinook database (1 MB) and generated ~20 MB ones
(``--big-every``). Anonymous uploads are rate-limited per IP; the run sets
``UPLOAD_RATE_LIMIT`` to a rate it cannot reach. Galleries wait for moderation
(``GALLERY_AUTO_APPROVE`` unset, as in production); their builds still end ``ready``.

Reports: uploads accepted; builds ready and failed (with reasons); builds lost (accepted
but the status JSON has no row, or not final at the deadline with no message for it left
in the broker's queue or unacked set, so nothing would ever finish it) and stuck (not
final at the deadline, a message still queued or unacked); p50/p95 seconds from the
start of the upload to the first poll that sees ``ready``; peak RSS of the Celery worker
processes and their children (sampled every 0.25 s from /proc). ``--kill-worker-at F``
SIGKILLs one busy prefork worker process once a fraction F of the accepted builds is
final. Exits 1 unless every upload was accepted and every build ended ``ready``.

    .venv/bin/python bench/load.py [--uploads 50] [--big-every 2] [--kill-worker-at 0.5]

Needs PostgreSQL and Redis running (``make services``); ``--database-url`` and
``--redis-url`` name them (default: database ``glasshouse_load`` and Redis db 10 on
this machine). Everything the run made is removed at the end (``--keep`` keeps the
data folder, database and Redis db for a look).
"""

from __future__ import annotations

import argparse
import html.parser
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests
from processes import REPO, RUNTIME_DIR, children, descendants, free_port, wait_http

CHINOOK = REPO.parent / "shared" / "data" / "chinook.sqlite"
FINAL = ("ready", "failed", "cancelled")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


# --- Databases to upload -----------------------------------------------------------------------


def make_database(path: Path, megabytes: int) -> Path:
    """Write a SQLite database of at least ``megabytes`` MB (10**6 bytes) to ``path``: two
    tables of random text and numbers (different in every file). Returns ``path``."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE stations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, elevation REAL);
            CREATE TABLE readings (
                id INTEGER PRIMARY KEY, station_id INTEGER REFERENCES stations(id),
                taken_at TEXT, value REAL, note TEXT
            );
            CREATE INDEX readings_station ON readings(station_id);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
            INSERT INTO stations SELECT i, 'Station ' || hex(randomblob(4)), abs(random() % 3000) FROM n;
            """
        )
        while path.stat().st_size < megabytes * 10**6:
            db.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                INSERT INTO readings (station_id, taken_at, value, note)
                SELECT 1 + abs(random() % 500), datetime(1700000000 + abs(random() % 100000000), 'unixepoch'),
                       random() / 1e15, hex(randomblob(30)) FROM n
                """
            )
            db.commit()
    return path


# --- The stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    """The processes of one run, their logs under ``data``, torn down by ``stop``."""

    data: Path
    env: dict[str, str]
    app_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.data / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs[name] = proc
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs.values()):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def reset_database(url: str) -> None:
    """Drop and create the PostgreSQL database named by ``url`` (connecting to ``postgres``)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def start_stack(args: argparse.Namespace, stack: Stack) -> None:
    """Start moto, migrate, gunicorn, the Celery worker and beat into ``stack``; return once all answer."""
    data = stack.data
    py = sys.executable
    web_port, s3_port = free_port(), free_port()
    env = stack.env
    env.update(dict(os.environ, **AWS_ENV))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "gallery.project.settings",
            "GLASSHOUSE_DATA_DIR": str(data / "data"),
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "S3_BUCKET": "glasshouse-load",
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
            "S3_REGION": "us-east-1",
            "PORT": str(web_port),
            "CONTENT_PORT": str(web_port),
            "APP_URL": f"http://127.0.0.1:{web_port}",
            "WEB_CONCURRENCY": "2",
            "UPLOAD_RATE_LIMIT": "1000000/s",  # one client IP sends every upload
            "PYODIDE_RUNTIME_DIR": str(RUNTIME_DIR),
            "WHEEL_CACHE_DIR": str(REPO / "var" / "cache" / "wheels"),
            "GUNICORN_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("GALLERY_AUTO_APPROVE", None)
    reset_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    stack.app_url = env["APP_URL"]
    stack.start("moto", [py, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)])
    wait_http(f"{env['S3_ENDPOINT_URL']}/moto-api/")
    import boto3

    boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=env["S3_BUCKET"])  # fmt: skip
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    stack.start("web", [py, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "gallery.project.wsgi:application"])
    celery = [py, "-m", "celery", "-A", "worker_shell.celery:app"]
    stack.start("worker", [*celery, "worker", "--pool=prefork", f"--concurrency={args.worker_processes}",
                           "--loglevel=INFO", "--hostname=load@%h"])  # fmt: skip
    stack.start("beat", [*celery, "beat", "--loglevel=INFO", f"--schedule={data / 'celerybeat-schedule'}"])
    wait_http(f"{stack.app_url}/healthz")
    deadline = time.monotonic() + 60
    while "ready." not in (data / "worker.log").read_text(errors="replace"):
        if time.monotonic() > deadline or stack.procs["worker"].poll() is not None:
            raise SystemExit(f"the Celery worker did not start; see {data / 'worker.log'}")
        time.sleep(0.2)


# --- Worker processes and memory ---------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Samples the RSS of the worker's process tree every ``interval`` s until ``stop_event``.

    ``peak_total``: largest sum over the tree (main process, pool processes, their children
    such as Node); ``peak_process``: largest one pool process plus its own children.
    """

    def __init__(self, root: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="memory")
        self.root, self.interval = root, interval
        self.stop_event = threading.Event()
        self.peak_total = self.peak_process = 0

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            total = rss_bytes(self.root)
            for child in children(self.root):
                subtree = sum(rss_bytes(pid) for pid in descendants(child))
                self.peak_process = max(self.peak_process, subtree)
                total += subtree
            self.peak_total = max(self.peak_total, total)


def kill_busy_worker(stack: Stack, min_seconds: float = 5) -> dict[str, object] | None:
    """SIGKILL the prefork process running the build that started longest ago (at least
    ``min_seconds`` ago), as ``celery inspect active`` reports it; return
    ``{"pid", "build"}``, or None when no build has run that long yet."""
    out = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker_shell.celery:app", "inspect", "active", "--json", "--timeout=5"],
        check=False, cwd=REPO, env=stack.env, capture_output=True, text=True,
    ).stdout  # fmt: skip
    try:
        active = [task for tasks in json.loads(out or "{}").values() for task in tasks]
    except ValueError:
        return None
    running = [t for t in active if t.get("time_start") and time.time() - t["time_start"] >= min_seconds]
    if not running:
        return None
    oldest = min(running, key=lambda t: t["time_start"])
    os.kill(oldest["worker_pid"], signal.SIGKILL)
    return {"pid": oldest["worker_pid"], "build": oldest["args"][0]}


# --- Clients -----------------------------------------------------------------------------------


class FormFields(html.parser.HTMLParser):
    """The fields ``new FormData(form)`` sends for ``<form id="publish-form">``, minus the file:
    ``fields`` is a list of ``(name, value)``."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None
        self._first_option: tuple[str, str] | None = None
        self._selected = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "publish-form":
            self._in_form = True
        if not self._in_form or "disabled" in a:
            return
        name = a.get("name", "")
        kind = a.get("type", "text").lower()
        if tag == "input" and name and kind not in ("file", "submit", "button"):
            if kind not in ("checkbox", "radio") or "checked" in a:
                self.fields.append((name, a.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "select" and name:
            self._select, self._first_option, self._selected = name, None, False
        elif tag == "option" and self._select:
            option = (self._select, a.get("value", ""))
            self._first_option = self._first_option or option
            if "selected" in a and not self._selected:
                self.fields.append(option)
                self._selected = True
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, value = self.fields.pop()
            self.fields.append((name, value + data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            if not self._selected and self._first_option:
                self.fields.append(self._first_option)
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@dataclass
class Upload:
    """One client: its database, then what the app answered and what became of the build."""

    number: int
    database: Path
    status: int = 0
    error: str = ""
    build_path: str = ""
    started: float = 0.0
    uploaded: float = 0.0
    state: str = ""
    finished: float = 0.0
    failure_reason: str = ""
    missing: bool = False  # the status JSON answered 404


def run_client(app_url: str, upload: Upload, deadline: list[float], finals: threading.Semaphore) -> None:
    """GET the form, POST it with ``upload.database``, then poll the build's status JSON each
    second until it is final or ``deadline[0]`` (monotonic) passes. Fills in ``upload``."""
    session = requests.Session()
    try:
        page = session.get(f"{app_url}/publish/", timeout=120)
        page.raise_for_status()
        parser = FormFields()
        parser.feed(page.text)
        fields = [(k, v) for k, v in parser.fields if k != "title"]
        fields.append(("title", f"Load test {upload.number}: {upload.database.stem}"))
        upload.started = time.monotonic()
        with upload.database.open("rb") as fh:
            answer = session.post(
                f"{app_url}/publish/",
                data=fields,
                files={"file": (upload.database.name, fh, "application/octet-stream")},
                headers={"Accept": "application/json"},
                timeout=600,
            )
        upload.uploaded = time.monotonic()
        upload.status = answer.status_code
        body = answer.json()
    except (requests.RequestException, ValueError) as exc:
        upload.error = f"{type(exc).__name__}: {exc}"
        return
    if "redirect" not in body:
        upload.error = json.dumps(body.get("errors", body))
        return
    upload.build_path = body["redirect"]
    status_url = f"{app_url}{upload.build_path}status.json"
    while time.monotonic() < deadline[0]:
        try:
            reply = session.get(status_url, timeout=30)
            if reply.status_code == 404:
                upload.missing = True
            else:
                upload.missing = False
                data = reply.json()
                upload.state, upload.failure_reason = data["state"], data["failure_reason"]
                if data["finished"]:
                    upload.finished = time.monotonic()
                    finals.release()
                    return
        except (requests.RequestException, ValueError, KeyError):
            pass  # the web process is busy or restarting: poll again, as the page does
        time.sleep(1)


def build_id(upload: Upload) -> str:
    return upload.build_path.rstrip("/").rsplit("/", 1)[-1]


def broker_holds(redis_url: str) -> str:
    """Everything the Redis broker still holds for the build tasks: waiting messages of every
    queue and the unacked set (messages delivered to a worker and not yet acknowledged)."""
    client = redis.Redis.from_url(redis_url)
    held = [raw.decode(errors="replace") for raw in client.hvals("unacked")] if client.exists("unacked") else []
    for key in client.scan_iter():
        if client.type(key) == b"list":
            held += [raw.decode(errors="replace") for raw in client.lrange(key, 0, -1)]
    return "\n".join(held)


# --- Main --------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty): ``fraction`` 0.95 gives p95."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    """``"p50 …, p95 …, max … s"`` of ``values`` in seconds, or ``"none"``."""
    if not values:
        return "none"
    return f"p50 {statistics.median(values):.1f} s, p95 {percentile(values, 0.95):.1f} s, max {max(values):.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=50, help="concurrent uploads (default 50)")
    parser.add_argument("--big-every", type=int, default=2, help="every K-th upload is a generated database (default 2: half)")
    parser.add_argument("--big-mb", type=int, default=20, help="size of the generated databases in MB (default 20)")
    parser.add_argument("--kill-worker-at", type=float, default=None, metavar="F",
                        help="SIGKILL one busy worker process once this fraction of the builds is final (e.g. 0.5)")
    parser.add_argument("--deadline", type=float, default=1800,
                        help="seconds after the last upload was answered to wait for builds to end (default 1800)")
    parser.add_argument("--worker-processes", type=int, default=2, help="prefork pool size (default 2)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/glasshouse_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--keep", action="store_true", help="keep the data folder, database and Redis db")
    args = parser.parse_args()  # fmt: skip
    if args.kill_worker_at is not None and not 0 <= args.kill_worker_at < 1:
        parser.error("--kill-worker-at must be a fraction in [0, 1), e.g. 0.5")

    data = Path(tempfile.mkdtemp(prefix="glasshouse-load-"))
    (data / "upload").mkdir()
    databases = [
        make_database(data / "upload" / f"generated_{n}.sqlite", args.big_mb)
        if args.big_every and n % args.big_every == args.big_every - 1
        else CHINOOK
        for n in range(args.uploads)
    ]
    stack = Stack(data=data, env={})
    sampler: MemorySampler | None = None
    uploads = [Upload(number=n + 1, database=db) for n, db in enumerate(databases)]
    deadline = [float("inf")]
    finals = threading.Semaphore(0)
    killed: dict[str, object] = {}
    try:
        start_stack(args, stack)
        sampler = MemorySampler(stack.procs["worker"].pid)
        sampler.start()
        began = time.monotonic()
        threads = [
            threading.Thread(target=run_client, args=(stack.app_url, u, deadline, finals), daemon=True)
            for u in uploads
        ]
        for thread in threads:
            thread.start()
        # Every upload answered (or gave up): the deadline counts from the last answer.
        while any(u.uploaded == 0 and not u.error for u in uploads):
            time.sleep(0.5)
        deadline[0] = time.monotonic() + args.deadline
        accepted = [u for u in uploads if u.build_path]
        done = 0
        while any(t.is_alive() for t in threads):
            if finals.acquire(timeout=0.5):
                done += 1
            if args.kill_worker_at is not None and not killed and done >= args.kill_worker_at * len(accepted):
                killed = kill_busy_worker(stack) or {}
                killed.update({"at": time.monotonic() - began, "final": done} if killed else {})
        held = broker_holds(args.redis_url)
    finally:
        if sampler is not None:
            sampler.stop_event.set()
            sampler.join()
        stack.stop()
    elapsed = time.monotonic() - began

    accepted = [u for u in uploads if u.build_path]
    ready = [u for u in accepted if u.state == "ready"]
    failed = [u for u in accepted if u.state in ("failed", "cancelled")]
    open_ = [u for u in accepted if u.state not in FINAL]
    lost = [u for u in accepted if u.missing or (u in open_ and build_id(u) not in held)]
    stuck = [u for u in open_ if u not in lost]
    big = sum(1 for u in uploads if u.database != CHINOOK)
    print(f"uploads               {len(uploads)} at once ({len(uploads) - big} x {CHINOOK.name} "
          f"{CHINOOK.stat().st_size / 1e6:.1f} MB, {big} x generated {args.big_mb} MB)")  # fmt: skip
    print(f"stack                 gunicorn 2 web workers, Celery prefork {args.worker_processes} processes, "
          "Redis, PostgreSQL, moto S3")  # fmt: skip
    print(f"accepted uploads      {len(accepted)}")
    for u in uploads:
        if not u.build_path:
            print(f"  refused #{u.number}: HTTP {u.status} {u.error[:300]}")
    print(f"builds ready          {len(ready)}")
    print(f"builds failed         {len(failed)}")
    for u in failed:
        print(f"  {build_id(u)} ({u.database.name}): {u.state}: {u.failure_reason}")
    print(f"builds lost           {len(lost)}")
    for u in lost:
        print(f"  {build_id(u)}: " + ("no row (404)" if u.missing else f"{u.state}, no message left in the broker"))
    print(f"builds stuck          {len(stuck)}")
    for u in stuck:
        print(f"  {build_id(u)}: {u.state} at the deadline, its message still in the broker")
    answered = [u.uploaded - began for u in uploads if u.uploaded]
    print(f"uploads answered      {spread(answered)} after the start (upload and accept, 2 web workers)")
    print(f"upload to ready       {spread([u.finished - u.started for u in ready])}")
    print(f"  {CHINOOK.name:<19} {spread([u.finished - u.started for u in ready if u.database == CHINOOK])}")
    print(f"  {'generated':<19} {spread([u.finished - u.started for u in ready if u.database != CHINOOK])}")
    print(f"peak worker memory    {sampler.peak_total / 2**20:.0f} MiB in all (Celery main + pool processes + "
          f"children), {sampler.peak_process / 2**20:.0f} MiB for one pool process with its children")  # fmt: skip
    if args.kill_worker_at is not None:
        if "pid" in killed:
            ends = {build_id(u): u for u in accepted}
            victim = ends.get(str(killed["build"]))
            print(f"killed worker         pid {killed['pid']} (SIGKILL) at {killed['at']:.0f} s, after {killed['final']} "
                  f"builds were final, while building {killed['build']}: that build ended "
                  f"{victim.state if victim else '?'}")  # fmt: skip
        else:
            print("killed worker         none (no build ran for 5 s in time)")
    print(f"wall time             {elapsed:.0f} s; machine load average at the end "
          + " / ".join(f"{load:.1f}" for load in os.getloadavg()) + f" (1/5/15 min, {os.cpu_count()} CPUs)")
    print(f"logs                  {data}" if args.keep else "logs                  removed (--keep keeps them)")
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
        drop_database(args.database_url)
        redis.Redis.from_url(args.redis_url).flushdb()
    ok = len(accepted) == len(uploads) and len(ready) == len(accepted)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
