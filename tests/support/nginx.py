"""deploy/nginx/ rendered for a test machine and run with Debian's nginx.

``render_deploy_config`` writes the three files (upstreams, app origin, content origins) inside a
minimal main context, with what a test must change replaced: TLS files and the data folder point
into the test's folder, listeners and upstreams use loopback ports. ``running_nginx`` starts it
and stops it. Used by tests/gallery/test_nginx_example.py and tests/deploy/.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

NGINX_DIR = REPO_ROOT / "deploy" / "nginx"
#: In the order nginx must read them (upstreams first).
CONFIG_FILES = ("upstreams.conf", "app.conf", "content.conf")


def find_nginx() -> str:
    """Debian's nginx; fails (never skips) with what to install when it is missing."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        pytest.fail("nginx is not installed: as root, `apt-get install nginx-light` (make nginx)")
    return path


def deploy_config_text() -> str:
    """deploy/nginx/'s files, concatenated in the order nginx reads them."""
    return "\n".join((NGINX_DIR / name).read_text() for name in CONFIG_FILES)


@dataclass(frozen=True)
class Nginx:
    """A rendered config; ``command(*args)`` runs nginx on it."""

    binary: str
    prefix: Path
    config: Path

    def command(self, *args: str) -> list[str]:
        return [
            self.binary,
            "-p",
            str(self.prefix),
            "-c",
            str(self.config),
            "-e",
            str(self.prefix / "error.log"),
            *args,
        ]

    @property
    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


def render_deploy_config(
    binary: str, folder: Path, replacements: list[tuple[str, str]], *, data_dir: Path | None = None
) -> Nginx:
    """Write deploy/nginx/ into ``folder/nginx.conf`` with ``replacements`` (old, new) applied.

    Self-signed TLS files replace /etc/ssl/glasshouse/, ``data_dir`` (default ``folder/data``)
    replaces /var/lib/glasshouse/, and ``folder`` replaces the log folder /var/log/nginx/ (so every
    server logs to ``folder/access.log`` and ``folder/error.log``). Each ``old`` must occur in the
    files: an assertion says to update the test when one no longer does.
    """
    ssl_dir = folder / "ssl"
    ssl_dir.mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=glasshouse.test",
         "-keyout", str(ssl_dir / "key"), "-out", str(ssl_dir / "pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("app", "content-wildcard"):
        shutil.copy(ssl_dir / "pem", ssl_dir / f"{name}.pem")
        shutil.copy(ssl_dir / "key", ssl_dir / f"{name}.key")
    if data_dir is None:
        data_dir = folder / "data"
        data_dir.mkdir()
    text = deploy_config_text()
    defaults = [
        ("/etc/ssl/glasshouse/", f"{ssl_dir}/"),
        ("/var/lib/glasshouse/", f"{data_dir}/"),
        ("/var/log/nginx/", f"{folder}/"),
    ]
    for old, new in [*defaults, *replacements]:
        assert old in text, f"deploy/nginx/ no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    config = folder / "nginx.conf"
    config.write_text(
        # Workers as this user: a root master would start them as nobody, who cannot enter tmp_path.
        f"user {getpass.getuser()};\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\ndaemon off;\nevents {{}}\n"
        f"http {{\n    access_log {folder}/access.log;\n"
        + "".join(f"    {kind}_temp_path {folder}/{kind};\n" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
        + text
        + "\n}\n"
    )
    return Nginx(binary=binary, prefix=folder, config=config)


@contextmanager
def running_nginx(nginx: Nginx) -> Iterator[Nginx]:
    """Run ``nginx`` in the foreground until the block ends; fails with its error log if it does not start."""
    process = subprocess.Popen(nginx.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (nginx.prefix / "nginx.pid").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start:\n{nginx.error_log}")
            time.sleep(0.05)
        yield nginx
    finally:
        process.terminate()
        process.wait(10)
