from __future__ import annotations

import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from builder.pyodide import PYODIDE_VERSION
from builder.stdlib import STDLIB_NAME, cache_path, compiled_stdlib


@pytest.fixture(scope="module")
def compiled(pyodide_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """``(cache dir, compiled zip, log lines)``: the standard library compiled once, in a cache of its own,
    by two builds asking at the same time (threads): the second waits for the first's copy."""
    cache = tmp_path_factory.mktemp("cache")
    lines: list[str] = []
    with ThreadPoolExecutor(2) as pool:
        made, again = pool.map(lambda _: compiled_stdlib(pyodide_runtime, cache, PYODIDE_VERSION, log=lines.append), range(2))
    assert made is not None and again == made, lines
    return cache, made, lines


def test_two_builds_asking_at_once_compile_it_once(compiled: tuple[Path, Path, list[str]]) -> None:
    _, _, lines = compiled
    assert len([line for line in lines if line.startswith("Compiled the standard library")]) == 1, lines
    assert [line for line in lines if not line.startswith("Compiled the standard library")] == [], lines


def test_it_compiles_what_pyodide_and_datasette_import_and_copies_the_rest(
    compiled: tuple[Path, Path, list[str]], pyodide_runtime: Path
) -> None:
    _, made, lines = compiled
    assert any(line.startswith(f"Compiled the standard library of Pyodide {PYODIDE_VERSION}") for line in lines), lines
    source = zipfile.ZipFile(pyodide_runtime / STDLIB_NAME)
    archive = zipfile.ZipFile(made)
    names = set(archive.namelist())
    # zipimport's layout: <module>.pyc where <module>.py was, no __pycache__.
    for module in ("json/__init__", "asyncio/base_events", "sqlite3/__init__", "_pyodide/_base", "email/utils"):
        assert f"{module}.pyc" in names and f"{module}.py" not in names, module
        header = archive.read(f"{module}.pyc")[:16]
        assert int.from_bytes(header[4:8], "little") == 0b01, "unchecked-hash pyc"
    # A module neither Pyodide's start-up nor Datasette imports keeps its source.
    assert archive.read("smtplib.py") == source.read("smtplib.py")
    assert "smtplib.pyc" not in names
    for info in source.infolist():
        if not info.filename.endswith(".py"):
            assert archive.read(info.filename) == source.read(info), info.filename
        else:
            assert info.filename in names or info.filename[:-3] + ".pyc" in names, info.filename
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist()), "fixed timestamps"


def test_a_second_build_takes_the_cached_copy_without_node(
    compiled: tuple[Path, Path, list[str]], pyodide_runtime: Path
) -> None:
    cache, made, _ = compiled
    lines: list[str] = []
    assert compiled_stdlib(pyodide_runtime, cache, PYODIDE_VERSION, log=lines.append, node="no-such-node") == made
    assert lines == []
    assert made == cache_path(pyodide_runtime, cache, PYODIDE_VERSION)


def fake_runtime(folder: Path, pyodide_mjs: str = "") -> Path:
    folder.mkdir()
    (folder / STDLIB_NAME).write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (folder / "pyodide.mjs").write_text(pyodide_mjs)
    return folder


def test_without_node_the_bundle_keeps_the_source_zip_and_the_log_says_why(tmp_path: Path) -> None:
    lines: list[str] = []
    runtime = fake_runtime(tmp_path / "runtime")
    assert compiled_stdlib(runtime, tmp_path / "cache", PYODIDE_VERSION, log=lines.append, node="no-such-node") is None
    assert lines == ["Compiled standard library not made: Node.js ('no-such-node') is not on PATH."]


def test_a_failing_compile_leaves_no_cache_entry_and_the_log_says_why(tmp_path: Path) -> None:
    lines: list[str] = []
    runtime = fake_runtime(tmp_path / "runtime", 'export async function loadPyodide() { throw new Error("no wasm here"); }\n')
    assert compiled_stdlib(runtime, tmp_path / "cache", PYODIDE_VERSION, log=lines.append) is None
    (line,) = lines
    assert "no wasm here" in line and "uses Pyodide's source-only python_stdlib.zip" in line
    assert not cache_path(runtime, tmp_path / "cache", PYODIDE_VERSION).exists()
    # Only the empty lock file that concurrent builds wait on (builder.wheels.cache_lock) stays.
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [cache_path(runtime, tmp_path / "cache", PYODIDE_VERSION).parent.name + ".lock"]
