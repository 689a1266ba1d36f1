"""The compiled standard library: Pyodide's ``python_stdlib.zip`` with its hot modules as bytecode.

npm's ``python_stdlib.zip`` holds sources only, so every reader's Pyodide compiled the
modules it imports on every boot (about half of ``loadPyodide``'s time). The builder
makes, once per Pyodide runtime, a copy whose modules imported by Pyodide's start-up and
by Datasette are unchecked-hash ``.pyc`` (``runtime/node/glasshouse_bytecode.py``,
``stdlib_zip``), compiled in that same Pyodide in Node (``runtime/node/compile_stdlib.mjs``,
sandboxed like the build's compatibility check). Bundles pass it to ``loadPyodide`` as
``stdLibURL``.

It is cached in the wheel cache under ``stdlib/``, keyed by the Pyodide version and the
sha256 of the source zip and of the two files that make it, and stored (``bundle.py``)
at ``runtime/pyodide-<version>/stdlib/<sha256>/python_stdlib.zip``: content-addressed,
shared by every build on that runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.compat import CompatError, SandboxUnavailable, node_sandbox
from builder.runtime import BYTECODE_MODULE, RUNTIME_DIR, STDLIB_SCRIPT
from builder.wheels import cache_lock, sha256_file

#: Name of the standard-library zip in the npm package, and of the compiled copy.
STDLIB_NAME = "python_stdlib.zip"
RESULT_PREFIX = "GLASSHOUSE_STDLIB_RESULT "


def cache_path(runtime_dir: Path, cache_dir: Path, pyodide_version: str) -> Path:
    """Where the compiled copy of ``runtime_dir``'s standard library is cached in ``cache_dir``.

    ``cache_dir/stdlib/pyodide-<version>-<key>/python_stdlib.zip``, ``key`` from the sha256 of
    the source zip, ``glasshouse_bytecode.py`` and ``compile_stdlib.mjs``: a new runtime or a
    change in how it is compiled makes a new copy. Raises ``OSError`` if a file is missing.
    """
    key = hashlib.sha256()
    for path in (runtime_dir / STDLIB_NAME, BYTECODE_MODULE, STDLIB_SCRIPT):
        key.update(sha256_file(path).encode())
    return cache_dir / "stdlib" / f"pyodide-{pyodide_version}-{key.hexdigest()[:32]}" / STDLIB_NAME


def compiled_stdlib(
    runtime_dir: Path,
    cache_dir: Path,
    pyodide_version: str,
    *,
    log: Callable[[str], None],
    node: str = "node",
    timeout: float = 300,
) -> Path | None:
    """Return the compiled standard-library zip of ``runtime_dir`` (``cache_path``), making it if needed.

    The first call for a runtime boots Pyodide in Node (about 10-20 s on a 2-core machine)
    and writes the copy atomically; concurrent builds on one machine wait for the first
    (a file lock next to the copy) instead of compiling it again. Returns
    ``None`` after logging why to ``log`` if it cannot be made (Node missing, too old to
    be sandboxed, failing or slower than ``timeout`` seconds): the bundle then uses the
    source ``python_stdlib.zip`` and works as before, only slower to boot.
    """
    target = cache_path(runtime_dir, cache_dir, pyodide_version)
    if target.is_file():
        return target
    node_path = shutil.which(node)
    if node_path is None:
        log(f"Compiled standard library not made: Node.js ({node!r}) is not on PATH.")
        return None
    # One compilation at a time per runtime: a concurrent build waits, then finds the copy.
    with cache_lock(target.parent.with_name(target.parent.name + ".lock")):  # empty; it stays
        if target.is_file():
            return target
        return _compile(runtime_dir, target, pyodide_version, node_path, log, timeout)


def _compile(
    runtime_dir: Path, target: Path, pyodide_version: str, node_path: str, log: Callable[[str], None], timeout: float
) -> Path | None:
    """Make ``target`` (see ``compiled_stdlib``); ``None`` after logging why if it cannot."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".making-", dir=target.parent)).resolve()
    try:
        out = scratch / STDLIB_NAME
        config = {"runtimeDir": str(runtime_dir.resolve()), "bytecodeModule": str(BYTECODE_MODULE), "out": str(out)}
        sandbox = node_sandbox(
            node_path, read=[RUNTIME_DIR.resolve(), runtime_dir.resolve(), scratch], write=[scratch], scratch=scratch
        )
        proc = subprocess.run(
            [*sandbox.prefix, node_path, *sandbox.node_options, str(STDLIB_SCRIPT), json.dumps(config)],
            check=False, capture_output=True, text=True, timeout=timeout, env=sandbox.env,
            stdin=subprocess.DEVNULL, cwd=scratch,
        )  # fmt: skip
        results = [line[len(RESULT_PREFIX) :] for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        result: dict[str, Any] = (
            json.loads(results[-1]) if results else {"ok": False, "reason": proc.stderr.strip()[-500:]}
        )
        if not result["ok"]:
            raise CompatError(result["reason"] or f"node exited with code {proc.returncode}", proc.stderr)
        with zipfile.ZipFile(out) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise CompatError(f"the compiled zip's entry {bad} is corrupt")
        os.replace(out, target)
        counts = result["counts"]
        log(
            f"Compiled the standard library of Pyodide {pyodide_version} in {result['ms']} ms: "
            f"{counts['compiled']} modules as bytecode, {counts['copied']} entries as they were."
        )
        return target
    except (CompatError, SandboxUnavailable, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
        log(f"Compiled standard library not made ({exc}); the bundle uses Pyodide's source-only {STDLIB_NAME}.")
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
