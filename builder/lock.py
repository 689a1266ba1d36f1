"""Regenerate the catalog locks: ``python -m builder.lock`` (or ``make lock``).

For each offered Datasette version, resolves Datasette plus every catalog plugin
together with pip's resolver, for Pyodide's Python (3.14, pure-Python wheels
only), and writes ``builder/catalog/lock-datasette-<version>.json``. PyYAML and
MarkupSafe have no pure wheel on PyPI, so their sdists are pinned and built into
pure wheels (``builder.pure_wheels``); the lock pins both hashes.

Needs PyPI through pip; takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from builder.catalog import DATASETTE_VERSIONS, load_catalog, lock_path
from builder.pure_wheels import PURE_PYTHON_SDISTS, build_pure_wheel, normalise
from builder.wheels import PYODIDE_PIP_TARGET, sha256_file

#: Packages Datasette declares but never imports at run time: only its
#: ``datasette install`` command uses them, which cannot run in a browser. Leaving
#: them out saves about 2.8 MB per cold start.
NOT_NEEDED_IN_BROWSER = {"pip", "setuptools"}



def _resolve(pip: list[str], work: Path, name: str, requirements: list[str], extra: list[str]) -> list[dict]:
    report = work / f"report-{name}.json"
    subprocess.run(
        [
            *pip, "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report),
            *PYODIDE_PIP_TARGET, "--find-links", str(work / "pure"), *extra, *requirements,
        ],
        check=True,
    )
    return json.loads(report.read_text())["install"]


def generate(datasette_version: str, work: Path) -> dict:
    """Resolve Datasette ``datasette_version`` plus the whole catalog; return the lock dict.

    One resolution of everything together fixes the versions; then one
    resolution per root (Datasette, each plugin), constrained to those versions,
    gives that root's exact closure, extras and markers included.
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
    datasette = f"datasette=={datasette_version}"
    everything = _resolve(pip, work, "all", [datasette, *load_catalog()], [])
    packages = {}
    for item in everything:
        meta = item["metadata"]
        name = normalise(meta["name"])
        if name in NOT_NEEDED_IN_BROWSER:
            continue
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        entry = {
            "version": meta["version"],
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
    constraints = work / "constraints.txt"
    constraints.write_text("".join(f"{n}=={e['version']}\n" for n, e in packages.items()))
    roots = {}
    for root in ["datasette", *load_catalog()]:
        requirement = datasette if root == "datasette" else root
        items = _resolve(pip, work, root, [datasette, requirement], ["-c", str(constraints)])
        roots[root] = sorted({normalise(i["metadata"]["name"]) for i in items} - NOT_NEEDED_IN_BROWSER)
    return {
        "datasette_version": datasette_version,
        "python": "3.14",
        "roots": roots,
        "packages": dict(sorted(packages.items())),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; writes one lock per Datasette version and prints its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasette-version", action="append", choices=DATASETTE_VERSIONS)
    args = parser.parse_args(argv)
    for version in args.datasette_version or DATASETTE_VERSIONS:
        with tempfile.TemporaryDirectory(prefix="glasshouse-lock-") as tmp:
            lock = generate(version, Path(tmp))
        lock_path(version).write_text(json.dumps(lock, indent=1, sort_keys=False) + "\n")
        print(f"{lock_path(version)}: {len(lock['packages'])} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
