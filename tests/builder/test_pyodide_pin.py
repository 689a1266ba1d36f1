"""The Pyodide release is written once, in ``builder/pyodide.py``: every other file reads it.

The settings and ``builder.bundle`` import it, ``deploy/fetch-pyodide.sh`` reads its lines
(``tests/deploy/test_fetch_pyodide.py``), the Dockerfile runs that script. Prose may still name
the version: READMEs, and lock files that record what they were resolved against.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest

from builder.pyodide import PYODIDE_INTEGRITY, PYODIDE_VERSION

REPO = Path(__file__).resolve().parents[2]

#: The one home of the pin.
HOME = "builder/pyodide.py"


def may_name_the_version(path: str) -> bool:
    """Prose (any README.md) and the plugin catalog's lock files may name the version; code may not."""
    name = PurePosixPath(path)
    return name.name == "README.md" or (name.parent.as_posix() == "builder/catalog" and name.name.startswith("lock-"))


def tracked_text_files() -> dict[str, str]:
    """``{path: text}`` of every file git tracks in the repository (binary files left out)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
    )
    if listed.returncode != 0:
        pytest.fail(f"this test reads the files git tracks; `git ls-files` failed: {listed.stderr.strip()}")
    files = {}
    for path in filter(None, listed.stdout.split("\0")):
        try:
            data = (REPO / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):  # deleted in the work tree, or a submodule
            continue
        if b"\0" not in data:
            files[path] = data.decode("utf-8", errors="replace")
    return files


def test_only_builder_pyodide_spells_the_pyodide_version_and_integrity():
    files = tracked_text_files()
    assert HOME in files, f"{HOME} is not tracked by git"
    assert files[HOME].count(f'PYODIDE_VERSION = "{PYODIDE_VERSION}"') == 1
    spelled = sorted(
        path
        for path, text in files.items()
        if path != HOME and (PYODIDE_INTEGRITY in text or (PYODIDE_VERSION in text and not may_name_the_version(path)))
    )
    assert not spelled, (
        f"these files spell Pyodide's version {PYODIDE_VERSION} or its integrity: read them from {HOME} "
        f"(Python: from builder.pyodide import PYODIDE_VERSION; shell: deploy/fetch-pyodide.sh's pin): {spelled}"
    )
