"""``deploy/fetch-pyodide.sh`` installs the Pyodide that ``builder/pyodide.py`` pins, where the settings look.

Runs the real script on the npm tarball ``make runtime`` left in the data folder's cache, so no
test reaches the registry: the script finds the tarball cached, checks it against the pinned
integrity, and unpacks it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from builder.pyodide import PYODIDE_VERSION

REPO = Path(__file__).resolve().parents[2]
FILES = {"pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json", "package.json"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder whose npm cache holds the pinned tarball (a link to the one ``make runtime`` fetched)."""
    tarball = Path(settings.DATA_DIR) / "cache" / "npm" / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tarball.is_file():
        pytest.fail(f"{tarball} is missing: run `make runtime` (it fetches the pinned Pyodide from npm)")
    cache = tmp_path / "data" / "cache" / "npm"
    cache.mkdir(parents=True)
    (cache / tarball.name).symlink_to(tarball)
    return tmp_path / "data"


def fetch(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the script with ``GLASSHOUSE_DATA_DIR=data_dir`` and ``env`` (nothing else of the test's environment)."""
    environment = {"PATH": os.environ.get("PATH", ""), "GLASSHOUSE_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        ["bash", "deploy/fetch-pyodide.sh"], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def installed_version(folder: Path) -> str:
    assert {path.name for path in folder.iterdir()} == FILES
    return json.loads((folder / "package.json").read_text())["version"]


def test_it_installs_the_pinned_version_in_the_data_folder(data_dir):
    result = fetch(data_dir)
    assert result.returncode == 0, result.stderr
    folder = data_dir / "runtime" / f"pyodide-{PYODIDE_VERSION}"
    assert f"Pyodide {PYODIDE_VERSION} runtime installed in {folder}" in result.stdout
    assert installed_version(folder) == PYODIDE_VERSION
    again = fetch(data_dir)
    assert again.returncode == 0, again.stderr
    assert f"Pyodide {PYODIDE_VERSION} runtime present in {folder}" in again.stdout


def test_it_installs_into_pyodide_runtime_dir_when_set_as_the_settings_read_it(data_dir, tmp_path):
    folder = tmp_path / "image" / "pyodide"
    result = fetch(data_dir, PYODIDE_RUNTIME_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert installed_version(folder) == PYODIDE_VERSION
    assert not (data_dir / "runtime").exists()


def test_a_runtime_folder_of_another_version_is_replaced(data_dir, tmp_path):
    folder = tmp_path / "pyodide"
    folder.mkdir()
    for name in FILES - {"package.json"}:
        (folder / name).write_text("old")
    (folder / "package.json").write_text(json.dumps({"name": "pyodide", "version": "0.0.1"}, indent=2))
    result = fetch(data_dir, PYODIDE_RUNTIME_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert "installed" in result.stdout
    assert installed_version(folder) == PYODIDE_VERSION
