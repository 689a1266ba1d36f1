"""Import snapshots of the build's compatibility check: Python with Datasette and the plugins imported.

Every build boots its bundle once in Node (``builder.compat``). Most of that boot is the same for
every build with the same runtime and wheels: Pyodide starts, loads the packages and imports
Datasette, the plugins and the runtime modules (about 6 of a check's 9 s for Datasette alone on
Chinook, here). When a build's check finds no snapshot of its set, a check of its own runs first,
on a neutral database of the build's (``builder.compat.NEUTRAL_TABLE``) with no metadata: it takes
a Pyodide memory snapshot at that point (``compat_check.mjs`` ``snapshotOut``), then renders its
pages. Every publisher's check, the first included, restores it (``snapshotIn``) and goes on from
there: write the database, start Datasette, render the pages. The bytecode zip and static files
that run wrote are kept with it (``Outputs``), so a restored check need not make them again. They
go into every later bundle of the set, so they come from a run that saw nothing of any
publisher's: a check that a publisher's database subverted could otherwise leave them for other
galleries.

A snapshot is keyed by everything that decides what is imported (``snapshot_key``): the Pyodide
runtime, the standard library zip, this build's ``pyodide-lock.json`` (so its wheels, by
sha256), the packages loaded, the code that runs before the snapshot (``SNAPSHOT_CODE``), and
Node's version.
Builds keep them in ``<cache_dir>/check-snapshots/<key>/`` (``FOLDER``; ``heap``: ``makeMemorySnapshot``'s bytes,
about 40 MB; ``files``: site-packages and the runtime modules, about 10 MB), is stored only
after a check that made it passed, and at most ``KEPT`` are kept (the least recently used go).
``builder.compat.check_bundle`` boots normally, and deletes the snapshot, when a check that
restored one fails and the same check without it passes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from builder.runtime import BUILTIN_PLUGINS, COMPAT_SCRIPT, READER_MODULES, SANDBOX_PRELOAD
from builder.wheels import sha256_file

#: The files besides the runtime module whose code runs before the snapshot is taken or decides what
#: it holds and how it is read.
SNAPSHOT_CODE = (COMPAT_SCRIPT, SANDBOX_PRELOAD, READER_MODULES / "snapshot.mjs", *BUILTIN_PLUGINS.values())

#: Bumped when what a snapshot holds or where it is taken changes: older ones are then never found (2: made
#: in a run of its own, no longer during a publisher's check).
FORMAT = 2
#: Snapshots kept per cache folder (each 50-100 MB here: Datasette alone, or with the catalog's plugins).
KEPT = 12
#: The folder under the build cache (``cache_dir``) that holds them.
FOLDER = "check-snapshots"
#: The files of one snapshot.
FILES = ("heap", "files")
#: The file that stands for a snapshot when its set takes none (``refuse``): why, on one line.
REFUSED = "refused"
#: The check's outputs kept beside a snapshot whose check wrote them (``Outputs``).
BYTECODE, STATIC, STATIC_LIST = "bytecode.zip", "static", "static.json"


@dataclass(frozen=True)
class Outputs:
    """What the check that made a snapshot wrote that is the same for every check of its set: the
    bytecode zip, the static files (a folder, each at its URL path) and their URL paths.

    The static files are the packages' own. The bytecode is of the site-packages modules that
    check's pages imported; a restored check's pages may import a few more, which readers then
    compile as they import them.
    """

    bytecode: Path
    static: Path
    static_urls: list[str]


def outputs(folder: Path) -> Outputs | None:
    """The ``Outputs`` kept in a snapshot's ``folder``, or ``None`` if its check wrote none."""
    listing = folder / STATIC_LIST
    if not ((folder / BYTECODE).is_file() and (folder / STATIC).is_dir() and listing.is_file()):
        return None
    return Outputs(folder / BYTECODE, folder / STATIC, json.loads(listing.read_text()))


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def _sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``, hashed once per size and modification time."""
    stat = path.stat()
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def snapshot_key(
    *,
    runtime_dir: Path,
    lock_file: Path,
    packages: tuple[str, ...],
    stdlib: Path | None,
    runtime_module: Path,
    node_version: tuple[int, ...],
) -> str:
    """The hex sha256 naming the import snapshot of a check with these inputs.

    ``runtime_dir`` is the Pyodide npm package (its wasm, JavaScript and lock), ``lock_file`` the
    build's ``pyodide-lock.json``, ``packages`` the names loaded, ``stdlib`` the compiled standard
    library zip (``None``: the runtime's own), ``runtime_module`` the ``glasshouse_runtime.py`` the
    check writes, ``node_version`` Node's ``(major, minor, patch)``.
    Raises ``OSError`` if a file is missing.
    """
    parts = {
        "format": FORMAT,
        "node": list(node_version),
        "runtime": [_sha256(runtime_dir / name) for name in ("pyodide.asm.wasm", "pyodide.asm.mjs", "pyodide.mjs")],
        "stdlib": _sha256(stdlib) if stdlib else _sha256(runtime_dir / "python_stdlib.zip"),
        "lock": _sha256(lock_file),
        "packages": list(packages),
        "code": [_sha256(path) for path in (runtime_module, *SNAPSHOT_CODE)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def find(root: Path, key: str) -> Path | None:
    """The folder of snapshot ``key`` under ``root`` if it holds every file (marked as just used), else ``None``."""
    folder = root / key
    if not all((folder / name).is_file() for name in FILES):
        return None
    now = time.time()
    os.utime(folder, (now, now))
    return folder


def store(root: Path, key: str, made: Path, kept: Outputs | None = None) -> None:
    """Move the snapshot files in ``made`` (written by the check) under ``root`` as ``key``, with a copy
    of the check's ``kept`` outputs if given; keep the newest ``KEPT``.

    Another build that stored the same key first wins; the move is a rename, so a reader
    never sees half a snapshot. Missing files in ``made`` store nothing.
    """
    if not all((made / name).is_file() for name in FILES):
        return
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    for name in FILES:
        shutil.move(made / name, staging / name)
    if kept is not None:
        shutil.copyfile(kept.bytecode, staging / BYTECODE)
        shutil.copytree(kept.static, staging / STATIC)
        (staging / STATIC_LIST).write_text(json.dumps(kept.static_urls))
    try:
        staging.rename(root / key)
    except OSError:  # stored meanwhile by another build
        shutil.rmtree(staging, ignore_errors=True)
    _prune(root)


def refuse(root: Path, key: str, reason: str) -> None:
    """Record under ``root`` that the set of ``key`` takes no import snapshot (``REFUSED``: one line,
    ``reason``), so later checks of the set boot normally without running the snapshot's check
    again. It ages out with the snapshots (``KEPT``)."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    (staging / REFUSED).write_text(reason.replace("\n", " ")[:500] + "\n")
    try:
        staging.rename(root / key)
    except OSError:  # recorded meanwhile by another build
        shutil.rmtree(staging, ignore_errors=True)
    _prune(root)


def refused(root: Path, key: str) -> str | None:
    """Why the set of ``key`` takes no import snapshot (``refuse``), or ``None`` if that was not recorded."""
    try:
        return (root / key / REFUSED).read_text().strip()
    except OSError:
        return None


def discard(root: Path, key: str) -> None:
    """Delete snapshot ``key`` under ``root`` (one that failed a check the normal boot passed)."""
    shutil.rmtree(root / key, ignore_errors=True)


def _prune(root: Path) -> None:
    """Delete all but the ``KEPT`` most recently used snapshots under ``root``, and moves older than an hour
    that never finished (a build killed in between)."""
    folders = [path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")]
    folders.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    stale = [path for path in root.glob(".incoming-*") if path.stat().st_mtime < time.time() - 3600]
    for folder in folders[KEPT:] + stale:
        shutil.rmtree(folder, ignore_errors=True)
