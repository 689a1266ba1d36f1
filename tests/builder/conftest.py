"""Fixtures for builder tests: real Pyodide runtime files, a shared wheel cache, sample databases.

The builder is plain Python, so these tests need no Django database; they use the
runtime that ``make runtime`` unpacked and the wheel cache that builds fill.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from builder.pyodide import PYODIDE_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pyodide_runtime() -> Path:
    """Folder with the npm package files of the pinned Pyodide (``PYODIDE_RUNTIME_DIR`` or ``var/runtime``)."""
    path = Path(os.environ.get("PYODIDE_RUNTIME_DIR", REPO_ROOT / "var" / "runtime" / f"pyodide-{PYODIDE_VERSION}"))
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


@dataclass
class SharedBuild:
    """A build ``builder.director.BuildDirector`` ran once this session: its store, result, states and log lines."""

    storage: Any
    result: Any
    states: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


#: The title of ``chinook_build``: markup that must stay text on the bootstrap page (test_bundle).
HOSTILE_TITLE = 'Chinook </script><b> <script>alert(1)</script> "><img src=x onerror=alert(1)>'


@pytest.fixture(scope="session")
def chinook_build(
    tmp_path_factory: pytest.TempPathFactory, chinook: Path, pyodide_runtime: Path, wheel_cache: Path
) -> SharedBuild:
    """Chinook with ``datasette-pretty-json`` on Datasette 0.65.5, built once per session (build id ``b0000000000000001``).

    Into a ``LocalStorage`` of its own; title ``HOSTILE_TITLE``, description "A music store".
    Shared by ``tests/builder/test_bundle.py`` (what a build writes) and ``test_compat.py`` (what
    its log says about the Node check), which only read it: a second build may add files to the store.
    """
    from builder.director import BuildDirector, BuildRequest
    from builder.storage import LocalStorage

    storage = LocalStorage(tmp_path_factory.mktemp("chinook-build"))
    states: list[str] = []
    lines: list[str] = []
    result = BuildDirector(
        BuildRequest(
            build_id="b0000000000000001", database_path=chinook, database_name="chinook", title=HOSTILE_TITLE,
            description="A music store", plugins=("datasette-pretty-json",), datasette_version="0.65.5",
            source_sha256="0" * 64, runtime_dir=pyodide_runtime, cache_dir=wheel_cache,
        ),
        storage=storage, on_state=states.append, log=lines.append,
    ).run()  # fmt: skip
    return SharedBuild(storage, result, states, lines)
