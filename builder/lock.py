"""Regenerate the catalog locks: ``python -m builder.lock`` (or ``make lock``).

For each offered Datasette version, resolves Datasette plus the catalog plugins
offered with that version (their ``verified_with`` names it) with pip's
resolver, for Pyodide's Python (3.14: pure-Python wheels, or wheels compiled for
Pyodide's own ABI), and writes ``builder/catalog/lock-datasette-<version>.json``.
PyYAML and MarkupSafe have no pure wheel on PyPI, so their sdists are pinned and
built into pure wheels (``builder.pure_wheels``); the lock pins both hashes.

pip evaluates environment markers for the machine it runs on (Linux), not for
Pyodide (``sys_platform == "emscripten"``), so the closures are walked here
with Pyodide's marker values: a dependency only Linux needs (httpx2's httpcore2)
is left out, one only Pyodide needs (httpx2's httpx2-jsfetch) is added to the
resolution and the walk repeats until nothing is missing.

Needs PyPI through pip; takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

from builder.catalog import (
    DATASETTE_VERSIONS,
    load_catalog,
    lock_path,
    plugins_for_version,
)
from builder.pure_wheels import PURE_PYTHON_SDISTS, build_pure_wheel, normalise
from builder.wheels import PYODIDE_PIP_TARGET, sha256_file

#: Packages Datasette declares but never imports at run time: only its
#: ``datasette install`` command uses them, which cannot run in a browser. Leaving
#: them out saves about 2.8 MB per cold start.
NOT_NEEDED_IN_BROWSER = {"pip", "setuptools"}

#: PEP 508 marker values inside the Pyodide of ``builder.pyodide`` (Python 3.14.2, Emscripten 5.0.3, wasm32):
#: update them with ``PYODIDE_VERSION``.
PYODIDE_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.14.2",
    "os_name": "posix",
    "platform_machine": "wasm32",
    "platform_python_implementation": "CPython",
    "platform_release": "5.0.3",
    "platform_system": "Emscripten",
    "platform_version": "#1",
    "python_full_version": "3.14.2",
    "python_version": "3.14",
    "sys_platform": "emscripten",
}

#: Upper bounds the resolution must respect, each with the reason (found by the
#: Node check, ``builder.compat``); pip would otherwise pick the newest release.
CONSTRAINTS = {
    "tatsu<5.17": "ics 0.7.2 (datasette-ics) fails at import with TatSu 5.17 and later",
}

#: Rounds of "resolve, walk, add what Pyodide alone needs" before giving up.
MAX_ROUNDS = 5


class LockError(Exception):
    """The catalog cannot be resolved for Pyodide (a conflict pip did not see)."""


def _resolve(pip: list[str], work: Path, name: str, requirements: list[str]) -> list[dict]:
    report = work / f"report-{name}.json"
    subprocess.run(
        [
            # --target: older pips refuse platform options without it; with --dry-run nothing is written.
            *pip, "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report),
            "--target", str(work / "target"), *PYODIDE_PIP_TARGET, "--find-links", str(work / "pure"), "-c", str(work / "constraints.txt"),
            *requirements,
        ],
        check=True,
    )
    return json.loads(report.read_text())["install"]


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether ``requirement`` holds in Pyodide for a package installed with ``extras``."""
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**PYODIDE_MARKER_ENVIRONMENT, "extra": extra})
        for extra in ["", *sorted(extras)]
    )


def pyodide_closure(requirement: str, resolved: dict[str, dict], missing: dict[str, Requirement]) -> set[str]:
    """Return the normalised names ``requirement`` needs in Pyodide, itself included.

    ``resolved`` maps normalised names to pip report items (``metadata`` with
    ``version`` and ``requires_dist``). A needed name pip did not resolve is
    recorded in ``missing`` and not followed. Raises ``LockError`` if a resolved
    version does not satisfy a requirement that only applies in Pyodide.
    """
    needed: dict[str, set[str]] = {}
    queue = [Requirement(requirement)]
    while queue:
        req = queue.pop()
        name = normalise(req.name)
        if name in NOT_NEEDED_IN_BROWSER:
            continue
        item = resolved.get(name)
        if item is None:
            missing.setdefault(name, req)
            continue
        version = item["metadata"]["version"]
        if not req.specifier.contains(version, prereleases=True):
            raise LockError(f"{name} {version} was resolved, but Pyodide needs {req}")
        extras = {normalise(e) for e in req.extras}
        seen = needed.get(name)
        if seen is not None and extras <= seen:
            continue
        needed[name] = (seen or set()) | extras
        for dep in item["metadata"].get("requires_dist") or []:
            dep_req = Requirement(dep)
            if _applies(dep_req, needed[name]):
                queue.append(dep_req)
    return set(needed)


def generate(datasette_version: str, work: Path) -> dict:
    """Resolve Datasette ``datasette_version`` plus its catalog plugins; return the lock dict.

    One pip resolution of everything together fixes the versions; each root's
    closure (Datasette's, and each plugin's together with Datasette's) is then
    walked with Pyodide's markers.
    """
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    sdist_dir, pure_dir = work / "sdists", work / "pure"
    subprocess.run(
        [*pip, "download", "--quiet", "--no-deps", "--no-binary=:all:", "-d", str(sdist_dir), *PURE_PYTHON_SDISTS],
        check=True,
    )
    sdists = {}
    for sdist in sorted(sdist_dir.glob("*.tar.gz")):
        wheel = build_pure_wheel(sdist, pure_dir)
        sdists[wheel.name] = sdist
    (work / "constraints.txt").write_text("".join(f"{c}\n" for c in CONSTRAINTS))
    datasette = f"datasette=={datasette_version}"
    catalog = load_catalog()
    requirements = {
        "datasette": datasette,
        **{name: catalog[name].requirement_for(datasette_version) for name in plugins_for_version(datasette_version)},
    }
    extra: list[str] = []
    for round_ in range(MAX_ROUNDS):
        items = _resolve(pip, work, f"all-{round_}", [*requirements.values(), *extra])
        resolved = {normalise(i["metadata"]["name"]): i for i in items}
        missing: dict[str, Requirement] = {}
        base = pyodide_closure(datasette, resolved, missing)
        roots = {
            root: sorted(base if root == "datasette" else base | pyodide_closure(req, resolved, missing))
            for root, req in requirements.items()
        }
        if not missing:
            break
        extra += sorted(f"{r.name}{'[' + ','.join(sorted(r.extras)) + ']' if r.extras else ''}{r.specifier}"
                        for r in missing.values())
    else:
        raise LockError(f"Pyodide-only dependencies kept appearing after {MAX_ROUNDS} rounds: {extra}")
    packages = {}
    for name in sorted(set().union(*roots.values())):
        item = resolved[name]
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        entry = {
            "version": item["metadata"]["version"],
            "filename": filename,
            "sha256": item["download_info"]["archive_info"]["hashes"]["sha256"],
            "source": "wheel",
        }
        if filename in sdists:
            entry.update(
                source="pure-sdist",
                sha256=sha256_file(pure_dir / filename),
                sdist_filename=sdists[filename].name,
                sdist_sha256=sha256_file(sdists[filename]),
            )
        packages[name] = entry
    return {
        "datasette_version": datasette_version,
        "python": "3.14",
        "roots": roots,
        "packages": packages,
    }


def render(lock: dict) -> str:
    """The lock file's text: indented JSON, keys in a fixed order, newline at the end."""
    return json.dumps(lock, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; writes one lock per Datasette version and prints its path.

    ``--out DIR`` writes the locks there instead of into the catalog (the
    reproducibility test compares them with the committed ones).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasette-version", action="append", choices=DATASETTE_VERSIONS)
    parser.add_argument("--out", type=Path, help="folder to write the locks to (default: the catalog)")
    args = parser.parse_args(argv)
    for version in args.datasette_version or DATASETTE_VERSIONS:
        with tempfile.TemporaryDirectory(prefix="glasshouse-lock-") as tmp:
            lock = generate(version, Path(tmp))
        target = args.out / lock_path(version).name if args.out else lock_path(version)
        target.write_text(render(lock))
        print(f"{target}: {len(lock['packages'])} packages, plugins: {', '.join(r for r in lock['roots'] if r != 'datasette')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
