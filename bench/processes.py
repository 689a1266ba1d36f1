"""Processes for the benchmarks: free ports, waiting for a server, process trees and their memory (from /proc)."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: The repository's root (the benchmarks run manage.py, gunicorn and Celery from there).
REPO = Path(__file__).resolve().parent.parent
# The benchmarks run as scripts (bench/ first on sys.path); the repository's packages import too.
sys.path.insert(0, str(REPO))

from builder.pyodide import PYODIDE_VERSION

#: The Pyodide runtime `make runtime` fetched into the repository's data folder.
RUNTIME_DIR = REPO / "var" / "runtime" / f"pyodide-{PYODIDE_VERSION}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    """Return once ``url`` answers any HTTP request; ``SystemExit`` with a message after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered, with an error status
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (every thread's), from /proc; [] once it is gone."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children(current)
    return tree


def pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` in bytes (``Pss`` of /proc/PID/smaps_rollup: its private
    resident pages plus its share of pages shared with other processes); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0
