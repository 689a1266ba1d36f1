"""The servers a reader benchmark talks to: Glasshouse (gunicorn + one Celery worker behind the
counting proxy) and native Datasette under uvicorn, each started on free loopback ports and
always stopped by ``close``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from processes import REPO, RUNTIME_DIR, free_port, wait_http
from proxy import CountingProxy

#: Pyodide's npm runtime: the files every gallery loads, and the reference for the download ratio.
#: The runtime files a page needs to start Pyodide (npm's ``pyodide`` package).
RUNTIME_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")


def start_logged(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the repository with stdout and stderr in ``log``, in a process group of its own."""
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` (SIGKILL after 20 s) and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Published:
    """A ready gallery: ``url`` (``http://<id>.localhost:<proxy port>/``), the wall-clock seconds of
    ``manage.py publish --wait`` and its output."""

    url: str
    seconds: float
    output: str

    @property
    def host(self) -> str:
        return self.url.split("/")[2]

    def get(self, path: str) -> bytes:
        """``path`` from the gallery's origin through the proxy (uncompressed: no Accept-Encoding).
        Python cannot resolve ``*.localhost``, so it connects to the proxy and names the host."""
        port = int(self.host.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            connection.request("GET", path, headers={"Host": self.host})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise SystemExit(f"{self.url.rstrip('/')}{path} answered HTTP {response.status}")
        return body

    def config(self) -> dict:
        """The build's config.mjs (the JSON the Service Worker reads), found from the bootstrap page."""
        page = self.get("/").decode()
        build = re.search(r'/_build/([^/"]+)/js/bootstrap\.mjs', page).group(1)
        source = self.get(f"/_build/{build}/config.mjs").decode()
        return json.loads(source[source.index("{") : source.rindex("}") + 1])


class GlasshouseStack:
    """gunicorn (app + content origins) and one solo Celery worker on the embedded defaults in
    ``data`` (a fresh folder), with the counting proxy in front: gallery URLs use the proxy's port.

    Limits are raised for big databases: uploads up to the hard cap, builds up to an hour.
    """

    def __init__(self, data: Path) -> None:
        self.data = data
        self.procs: list[subprocess.Popen[bytes]] = []
        self.web_port = free_port()
        self.proxy = CountingProxy(self.web_port)
        self.env = dict(os.environ)
        for name in ("DATABASE_URL", "REDIS_URL", "S3_BUCKET", "S3_ENDPOINT_URL"):
            self.env.pop(name, None)
        self.env.update(
            GLASSHOUSE_DATA_DIR=str(data / "glasshouse"),
            PORT=str(self.web_port),
            CONTENT_PORT=str(self.proxy.port),
            APP_URL=f"http://127.0.0.1:{self.web_port}",
            PYODIDE_RUNTIME_DIR=str(RUNTIME_DIR),
            WHEEL_CACHE_DIR=str(REPO / "var" / "cache" / "wheels"),
            UPLOAD_MAX_BYTES=str(1024**3),
            PUBLISHER_MAX_STORED_BYTES=str(64 * 1024**3),
            BUILD_SOFT_TIME_LIMIT="3600",
            BUILD_HARD_TIME_LIMIT="3900",
            PYTHONUNBUFFERED="1",
        )

    def start(self) -> None:
        """Migrate, start gunicorn and the worker; return once the app answers ``/healthz``."""
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=REPO, env=self.env, check=True)
        gunicorn = [py, "-m", "gunicorn", "-b", f"127.0.0.1:{self.web_port}", "-k", "gthread", "--threads", "8",
                    "--timeout", "600", "gallery.project.wsgi:application"]  # fmt: skip
        self.procs.append(start_logged(gunicorn, self.data / "gunicorn.log", self.env))
        worker = [py, "-m", "celery", "-A", "worker_shell.celery:app", "worker", "--pool=solo", "--loglevel=INFO"]
        self.procs.append(start_logged(worker, self.data / "worker.log", self.env))
        wait_http(f"http://127.0.0.1:{self.web_port}/healthz", timeout=60)

    def publish(self, database: Path, plugins: list[str], timeout: float) -> Published:
        """``manage.py publish DATABASE --wait``; ``SystemExit`` with the build's log if it fails or
        takes longer than ``timeout`` s."""
        argv = [sys.executable, "manage.py", "publish", str(database), "--approve", "--wait", "--timeout", str(timeout)]
        argv += [a for name in plugins for a in ("--plugin", name)]
        started = time.monotonic()
        done = subprocess.run(argv, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout + 60, check=False)
        seconds = time.monotonic() - started
        found = re.search(r"^Ready: (\S+)", done.stdout, re.MULTILINE)
        if done.returncode or not found:
            raise SystemExit(f"publishing {database} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return Published(found.group(1), seconds, done.stdout)

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.proxy.close()


def datasette_venv(version: str, root: Path) -> Path:
    """A virtualenv under ``root`` with ``datasette==version`` and uvicorn from PyPI (made once,
    reused); returns its ``datasette`` executable. ``SystemExit`` if pip fails."""
    venv = root / f"datasette-{version}"
    exe = venv / "bin" / "datasette"
    if exe.exists():
        return exe
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-qq", "--disable-pip-version-check", f"datasette=={version}", "uvicorn"]
    if subprocess.run(pip, check=False).returncode:
        shutil.rmtree(venv, ignore_errors=True)
        raise SystemExit(f"pip could not install datasette=={version} into {venv}; is PyPI reachable?")
    return exe


class NativeDatasette:
    """``datasette serve`` (uvicorn) on a free port, the database immutable (``-i``) as in the
    bundle, with the build's Datasette settings and metadata. ``url`` is its root."""

    def __init__(self, exe: Path, database: Path, settings: dict, metadata: dict, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        metadata_file = log.with_suffix(".metadata.json")
        metadata_file.write_text(json.dumps(metadata))
        argv = [str(exe), "serve", "-i", str(database), "-h", "127.0.0.1", "-p", str(self.port), "-m", str(metadata_file)]
        for name, value in settings.items():
            argv += ["--setting", name, str(value)]
        self.proc = start_logged(argv, log, dict(os.environ))
        wait_http(self.url + "-/versions.json", timeout=120)

    def close(self) -> None:
        stop(self.proc)
