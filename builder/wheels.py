"""Resolve and fetch the pinned wheel set of a bundle, and write its Pyodide lock file.

The catalog lock (``builder/catalog/lock-datasette-<version>.json``) pins every
package. A build takes the dependency closure of Datasette plus the chosen
plugins from it, fetches those files from PyPI with pip (hash-checked), keeps
them in a content-addressed cache (``<cache>/<sha256>/<file>``), and writes a
``pyodide-lock.json`` whose entries carry each wheel's sha256 so Pyodide checks
integrity when it installs them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.pure_wheels import build_pure_wheel, normalise

#: Platform tag of wheels compiled for Pyodide 314's ABI (2026_0). PyPI carries a few
#: (pydantic-core, which Datasette 1.0a needs); Pyodide loads them like pure wheels.
PYODIDE_WHEEL_PLATFORM = "pyemscripten_2026_0_wasm32"

#: pip flags that select wheels installable in Pyodide: pure-Python ones, plus wheels
#: compiled for Pyodide's own ABI (the lock records which).
PYODIDE_PIP_TARGET = [
    "--only-binary=:all:",
    "--platform", "any",
    "--platform", PYODIDE_WHEEL_PLATFORM,
    "--python-version", "3.14",
    "--implementation", "cp",
    "--abi", "none",
    "--abi", "abi3",
    "--abi", "cp314",
]

Log = Callable[[str], None]


class WheelError(Exception):
    """A pinned file could not be fetched or did not match its sha256 (transient or lock problem)."""


class TamperedWheel(Exception):
    """A wheel in the cache no longer matches the sha256 the catalog lock pins; ``args[0]`` says what to do.

    Not a ``WheelError``: retrying cannot help until someone removes the file.
    """


@dataclass(frozen=True)
class LockedWheel:
    """One pinned wheel: ``name`` normalised, ``sha256`` hex of the wheel file itself."""

    name: str
    version: str
    filename: str
    sha256: str
    source: str  # "wheel" (from PyPI as is) or "pure-sdist" (built by pure_wheels)
    sdist_filename: str = ""
    sdist_sha256: str = ""


def closure(lock: dict, roots: Iterable[str]) -> list[LockedWheel]:
    """Return the pinned wheels that ``roots`` need (their dependency closures), sorted by name.

    ``lock`` has the shape documented in ``builder.catalog.load_lock``; its
    ``roots`` map Datasette and each catalog plugin to their closures. Raises
    ``KeyError`` naming a root the lock does not pin.
    """
    names: set[str] = set()
    for root in roots:
        if normalise(root) not in lock["roots"]:
            raise KeyError(f"{root} is not pinned in the lock for Datasette {lock['datasette_version']}")
        names.update(lock["roots"][normalise(root)])
    packages = lock["packages"]
    return [
        LockedWheel(
            name=name,
            version=packages[name]["version"],
            filename=packages[name]["filename"],
            sha256=packages[name]["sha256"],
            source=packages[name]["source"],
            sdist_filename=packages[name].get("sdist_filename", ""),
            sdist_sha256=packages[name].get("sdist_sha256", ""),
        )
        for name in sorted(names)
    ]


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _pip(args: list[str], log: Log, scratch: Path) -> None:
    """Run pip with ``args``, its own temporary files under ``scratch``; raise ``WheelError`` if it fails."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env={**os.environ, "TMPDIR": str(scratch)})
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise WheelError(f"pip failed ({' '.join(args[:2])}): {tail}")


def _cache_path(cache_dir: Path, sha256: str, filename: str) -> Path:
    return cache_dir / sha256 / filename


def _store_in_cache(cache_dir: Path, path: Path, sha256: str, filename: str) -> Path:
    actual = sha256_file(path)
    if actual != sha256:
        raise WheelError(f"{filename}: sha256 is {actual}, the lock pins {sha256}")
    target = _cache_path(cache_dir, sha256, filename)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: builds in other processes may store the same wheel at once.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    os.close(fd)
    shutil.copyfile(path, tmp)
    os.replace(tmp, target)
    return target


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created, with its folder, if missing).

    For work on a shared cache that concurrent builds on one machine would otherwise each do
    (several pool processes, several workers): the second waits, then finds the result. The
    lock goes when the block ends or the process dies. Raises ``OSError`` if ``path`` cannot
    be opened.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def fetch_wheels(
    wheels: list[LockedWheel], cache_dir: Path, log: Log = print, *, temp_dir: Path | None = None
) -> dict[str, Path]:
    """Make sure every wheel in ``wheels`` is in ``cache_dir``; return ``{name: path}``, in the order of
    ``wheels`` whatever was cached before (the bundle lists them in that order).

    A cached wheel is hashed again on every call and must match the lock's sha256: a
    wheel changed in the cache after it was stored raises ``TamperedWheel`` (the build
    stops; nothing unpinned reaches a bundle). Missing wheels are downloaded by pip with ``--require-hashes``; pure-sdist
    entries are downloaded as sdists (hash-checked) and built into pure wheels,
    whose sha256 must match the lock. Downloads go to a folder under ``temp_dir``
    (default: the system's temporary folder), also pip's ``TMPDIR``, removed before
    returning. Raises ``WheelError`` on any failure.
    """
    result: dict[str, Path] = {}
    missing = _cached(wheels, cache_dir, result)
    if not missing:
        log(f"All {len(wheels)} wheels are in the cache.")
        return result
    # One download at a time per cache: a concurrent build fetching the same wheels waits, then
    # finds them cached.
    with cache_lock(cache_dir / ".fetch.lock"):
        missing = _cached(missing, cache_dir, result)
        if missing:
            log(f"Fetching {len(missing)} of {len(wheels)} wheels from PyPI.")
            _download(missing, cache_dir, result, log, temp_dir)
        else:
            log(f"All {len(wheels)} wheels are in the cache (another build fetched them meanwhile).")
    return {wheel.name: result[wheel.name] for wheel in wheels}


def _cached(wheels: list[LockedWheel], cache_dir: Path, result: dict[str, Path]) -> list[LockedWheel]:
    """Put every wheel of ``wheels`` found in ``cache_dir`` into ``result`` (``{name: path}``),
    after checking its sha256 (``TamperedWheel`` if it differs); return the ones not cached."""
    missing = []
    for wheel in wheels:
        path = _cache_path(cache_dir, wheel.sha256, wheel.filename)
        if path.is_file():
            actual = sha256_file(path)
            if actual != wheel.sha256:
                raise TamperedWheel(
                    f"The cached wheel {path} has sha256 {actual}, but the catalog lock pins {wheel.sha256}: "
                    "the wheel cache was changed after the download. Delete that file (the next build "
                    "downloads it again, hash-checked) and find out what changed it."
                )
            result[wheel.name] = path
        else:
            missing.append(wheel)
    return missing


def _download(
    missing: list[LockedWheel], cache_dir: Path, result: dict[str, Path], log: Log, temp_dir: Path | None
) -> None:
    """Download ``missing`` with pip (hash-checked), build the pure-sdist ones, store each in
    ``cache_dir`` and in ``result``. Raises ``WheelError``."""
    with tempfile.TemporaryDirectory(prefix="glasshouse-wheels-", dir=temp_dir) as tmp:
        tmp_dir = Path(tmp)
        binary = [w for w in missing if w.source == "wheel"]
        sdists = [w for w in missing if w.source == "pure-sdist"]
        if binary:
            reqs = tmp_dir / "wheels.txt"
            reqs.write_text("".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in binary))
            _pip(["download", "--no-deps", "--quiet", *PYODIDE_PIP_TARGET, "-d", str(tmp_dir / "w"), "-r", str(reqs)], log, tmp_dir)
            for w in binary:
                result[w.name] = _store_in_cache(cache_dir, tmp_dir / "w" / w.filename, w.sha256, w.filename)
                log(f"  {w.filename}")
        if sdists:
            reqs = tmp_dir / "sdists.txt"
            reqs.write_text("".join(f"{w.name}=={w.version} --hash=sha256:{w.sdist_sha256}\n" for w in sdists))
            # Only these projects as sources: pip still prepares their metadata in a build
            # environment, whose build dependencies (Cython...) should come as wheels, not be compiled.
            no_binary = ",".join(sorted(w.name for w in sdists))
            _pip(["download", "--no-deps", "--quiet", f"--no-binary={no_binary}", "-d", str(tmp_dir / "s"), "-r", str(reqs)], log, tmp_dir)
            for w in sdists:
                sdist = tmp_dir / "s" / w.sdist_filename
                if sha256_file(sdist) != w.sdist_sha256:
                    raise WheelError(f"{w.sdist_filename}: sha256 does not match the lock")
                built = build_pure_wheel(sdist, tmp_dir / "pure")
                result[w.name] = _store_in_cache(cache_dir, built, w.sha256, w.filename)
                log(f"  {w.filename} (pure-Python build of {w.sdist_filename})")


def write_pyodide_lock(base_lock: Path, cache_dir: Path, wheel_paths: list[Path], out: Path) -> dict:
    """Write ``out``: Pyodide's lock info from ``base_lock`` plus exactly ``wheel_paths``.

    ``wheel_paths`` all lie in ``cache_dir`` as ``<sha256>/<file>.whl``; each
    package's ``file_name`` is that relative path, which the runtime resolves
    against the ``/_wheels/`` store (its ``packageBaseUrl``). Pyodide's own CDN
    packages are dropped, so nothing can be fetched from outside the bundle.
    Load order comes from each wheel's metadata (pyodide-lock); an incompatible
    wheel raises ``ValueError``. Returns the lock as a dict.
    """
    from unittest import mock

    import pyodide_lock.utils
    from packaging.utils import parse_wheel_filename
    from pyodide_lock import PyodideLockSpec
    from pyodide_lock.utils import add_wheels_to_spec

    spec = PyodideLockSpec.from_json(base_lock)
    spec.packages = {}
    # pyodide-lock 0.2.1 predates the "pyemscripten_<abi>_<arch>" wheel tag (the tag of
    # Pyodide's own compiled wheels, e.g. pydantic-core); accept it when the ABI matches.
    check_compatible = pyodide_lock.utils._check_wheel_compatible
    abi_platform = f"pyemscripten_{spec.info.abi_version}_{spec.info.arch}"
    interpreter = "cp" + "".join(spec.info.python.split(".")[:2])

    def _check_wheel_compatible(path: Path, info: Any) -> None:
        tags = parse_wheel_filename(path.name)[3]
        if not any(t.platform == abi_platform and t.interpreter == interpreter for t in tags):
            check_compatible(path, info)

    try:
        with mock.patch.object(pyodide_lock.utils, "_check_wheel_compatible", _check_wheel_compatible):
            spec = add_wheels_to_spec(
                spec, wheel_paths, base_path=cache_dir, base_url="", ignore_missing_dependencies=True
            )
    except RuntimeError as exc:
        raise ValueError(str(exc)) from exc
    # The closure comes from pip's resolution; a declared dependency outside it
    # is one Datasette never imports (see builder.lock.NOT_NEEDED_IN_BROWSER).
    for package in spec.packages.values():
        package.depends = [d for d in package.depends if d in spec.packages]
    spec.to_json(out, indent=1)
    return json.loads(out.read_text())
