"""Validate an uploaded file as a SQLite database, without trusting it.

Two stages, following sqlite.org's "Defense against the dark arts" (security.html):

``check_header`` / ``check_file``
    Pure Python, no SQLite: the 100-byte header (fileformat.html, 1.3) and the file's size.
    Cheap, so the web request runs it too.
``check_database``
    Opens the file with SQLite in a child process (``python -m builder.sqlite_check``:
    ``child.py``, with ``schema.py``'s checks on ``hardened.py``'s connection) whose
    address space and CPU time are capped (``resource.setrlimit``) and which the parent kills
    at a wall-clock deadline. The connection is read-only and immutable, hardened by
    ``harden`` (defensive mode, ``trusted_schema=OFF``, ``cell_size_check=ON``, tight
    ``setlimit`` values, a progress handler as a deadline). It runs ``PRAGMA quick_check``,
    caps tables, columns and schema size, allows only known virtual-table modules, compiles
    every table, view and trigger (a function that needs an extension or does not exist
    fails to compile; ``load_extension`` is refused by name) and, with ``copy_to``, writes the
    canonical copy (``VACUUM INTO``, rollback-journal mode) in the same child with the same
    settings, so the raw upload itself is never published.

Every refusal is an ``InvalidDatabase`` whose message names the object and says what to change.

The package's modules, one per concern: ``header`` (before opening), ``hardened`` (on opening),
``schema`` and ``child`` (inside the child), ``limits`` (what a check may use and finds); this
module is the parent side and the public names.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from builder.sqlite_check.hardened import SQLITE_LIMITS, harden, open_untrusted
from builder.sqlite_check.header import (
    HEADER_BYTES,
    SQLITE_HEADER,
    UPLOAD_INTACT,
    HeaderInfo,
    InvalidDatabase,
    check_file,
    check_header,
    format_megabytes,
)
from builder.sqlite_check.limits import CheckLimits, DatabaseInfo, memory_message, time_message

__all__ = [
    "HEADER_BYTES", "SQLITE_HEADER", "SQLITE_LIMITS", "CheckLimits", "DatabaseInfo", "HeaderInfo", "InvalidDatabase",
    "check_database", "check_file", "check_header", "format_megabytes", "harden", "open_untrusted",
]

#: Seconds the parent waits beyond the child's own deadline before it kills the child.
KILL_GRACE_SECONDS = 5.0


def child_env(temp_dir: Path | None) -> dict[str, str]:
    """The child's whole environment: no secrets of the worker (no DATABASE_URL, no cloud keys)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    if temp_dir is not None:
        env["TMPDIR"] = env["SQLITE_TMPDIR"] = str(temp_dir)
    return env


def check_database(
    path: Path,
    *,
    copy_to: Path | None = None,
    limits: CheckLimits | None = None,
    temp_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> DatabaseInfo:
    """Check the SQLite file at ``path`` in a child process with resource limits; return ``DatabaseInfo``.

    Runs ``check_file`` here first, then every check of the module docstring in ``python -m
    builder.sqlite_check`` (address space and CPU seconds capped by ``limits``; killed if it
    is still running ``KILL_GRACE_SECONDS`` after ``limits.seconds``). With ``copy_to``, the
    child also writes the canonical copy there (``VACUUM INTO``, rollback-journal mode, same
    hardened settings). SQLite's temporary files go under ``temp_dir``. ``log`` gets the
    child's error output when it dies. The file at ``path`` is never changed.

    Raises ``InvalidDatabase`` with a message for the publisher when the file is refused, when
    the check runs out of time or memory, or when the child dies (then ``detail`` has its output).
    """
    limits = limits or CheckLimits()
    check_file(path, limits.max_bytes)
    request = {
        "path": str(Path(path).resolve()),
        "copy_to": str(copy_to) if copy_to else None,
        "limits": asdict(limits),
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-E", "-s", "-m", "builder.sqlite_check"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],  # the checkout, so `-m builder.sqlite_check` imports this package
            env=child_env(temp_dir),
            timeout=limits.seconds + KILL_GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidDatabase(time_message(limits.seconds), detail="killed at the wall-clock limit") from exc
    if completed.returncode == 0:
        answer = json.loads(completed.stdout)
        if "refused" in answer:
            raise InvalidDatabase(answer["refused"])
        info = answer["info"]
        return DatabaseInfo(
            tables=tuple(info["tables"]),
            views=tuple(info["views"]),
            size_bytes=info["size_bytes"],
            journal_mode=info["journal_mode"],
            warnings=tuple(info["warnings"]),
        )
    detail = completed.stderr[-4000:]
    if log is not None:
        log(f"The database check stopped with exit code {completed.returncode}:\n{detail}")
    if completed.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        cpu = max(1, math.ceil(limits.cpu_seconds or limits.seconds))
        raise InvalidDatabase(
            f"Checking the database used more than the {cpu} seconds of processor time it may use, so it was "
            "stopped. Make the file or its schema smaller (fewer tables, views or indexes) and upload it again; "
            "if it is well within the upload limit, tell us: the limit may be set too low.",
            detail=detail or f"killed by signal {-completed.returncode} (CPU time limit)",
        )
    if "MemoryError" in detail or "out of memory" in detail:
        raise InvalidDatabase(memory_message(limits.memory_bytes), detail=detail)
    raise InvalidDatabase(
        f"SQLite stopped while reading the file (exit code {completed.returncode}), so it is damaged or "
        f"deliberately malformed. {UPLOAD_INTACT}",
        detail=detail,
    )
