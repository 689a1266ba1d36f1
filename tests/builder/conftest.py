"""Fixtures for builder tests: real Pyodide runtime files, a shared wheel cache, sample databases.

The builder is plain Python, so these tests need no Django database; they use the
runtime that ``make runtime`` unpacked and the wheel cache that builds fill.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pyodide_runtime() -> Path:
    """Folder with the Pyodide 314.0.7 npm package files (``PYODIDE_RUNTIME_DIR`` or ``var/runtime``)."""
    path = Path(os.environ.get("PYODIDE_RUNTIME_DIR", REPO_ROOT / "var" / "runtime" / "pyodide-314.0.7"))
    if not (path / "pyodide.asm.wasm").is_file():
        pytest.fail(f"Pyodide runtime missing at {path}: run `make runtime`")
    return path


@pytest.fixture(scope="session")
def wheel_cache() -> Path:
    """The content-addressed wheel cache (``WHEEL_CACHE_DIR`` or ``var/cache/wheels``), shared across tests."""
    path = Path(os.environ.get("WHEEL_CACHE_DIR", REPO_ROOT / "var" / "cache" / "wheels"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def chinook(shared_data: Path) -> Path:
    """Path of the Chinook sample database (11 tables, 1 MB)."""
    return shared_data / "chinook.sqlite"
