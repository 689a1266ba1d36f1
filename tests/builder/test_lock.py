"""builder.lock: closures walked with Pyodide's markers, the committed locks, reproducibility."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from builder.catalog import DATASETTE_VERSIONS, load_lock, lock_path
from builder.lock import CONSTRAINTS, LockError, main, pyodide_closure, render


def item(name: str, version: str, *requires: str) -> dict:
    """A pip ``--report`` install item, as much of it as the walk reads."""
    return {"metadata": {"name": name, "version": version, "requires_dist": list(requires)}}


RESOLVED = {
    "app": item("app", "1.0", "httpx2>=2", "pip", "setuptools", "extras-user[fast]"),
    "httpx2": item(
        "httpx2", "2.16.2",
        "httpcore2==2.16.2; sys_platform != 'emscripten'",
        "httpx2-jsfetch; sys_platform == 'emscripten' and python_version >= '3.12'",
        "idna>=3.18",
        "brotli; extra == 'brotli'",
    ),
    "httpcore2": item("httpcore2", "2.16.2"),
    "idna": item("idna", "3.20"),
    "extras-user": item("extras-user", "1.0", "speedy; extra == 'fast'", "slowpoke; extra == 'slow'"),
    "speedy": item("speedy", "2.0"),
    "slowpoke": item("slowpoke", "2.0"),
}


def test_the_walk_uses_pyodide_markers_and_records_what_pip_did_not_resolve() -> None:
    missing: dict[str, Requirement] = {}
    names = pyodide_closure("app==1.0", RESOLVED, missing)
    # Linux-only httpcore2 is left out, Pyodide-only httpx2-jsfetch is missing, pip and setuptools
    # are never needed in the browser, and only the requested extra is followed.
    assert names == {"app", "httpx2", "idna", "extras-user", "speedy"}
    assert set(missing) == {"httpx2-jsfetch"}
    assert str(missing["httpx2-jsfetch"].marker) == 'sys_platform == "emscripten" and python_version >= "3.12"'


def test_the_walk_refuses_a_version_that_breaks_a_requirement() -> None:
    resolved = {**RESOLVED, "idna": item("idna", "3.1")}
    with pytest.raises(LockError, match=r"idna 3.1 was resolved, but Pyodide needs idna>=3.18"):
        pyodide_closure("app", resolved, {})


@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_the_committed_lock_is_in_canonical_form(version: str) -> None:
    lock = load_lock(version)
    assert lock_path(version).read_text() == render(lock)
    assert list(lock["packages"]) == sorted(lock["packages"])
    assert all(names == sorted(names) for names in lock["roots"].values())
    assert lock["python"] == "3.14"


@pytest.mark.parametrize("version", DATASETTE_VERSIONS)
def test_the_lock_respects_the_constraints(version: str) -> None:
    packages = load_lock(version)["packages"]
    for constraint in CONSTRAINTS:
        requirement = Requirement(constraint)
        if requirement.name in packages:
            assert requirement.specifier.contains(Version(packages[requirement.name]["version"]))


def test_datasette_1_0_is_pinned_with_what_it_needs_in_pyodide_only() -> None:
    lock = load_lock("1.0a41")
    datasette = set(lock["roots"]["datasette"])
    assert {"httpx2", "httpx2-jsfetch", "pydantic", "pydantic-core"} <= datasette
    assert not {"httpcore2", "truststore", "anyio"} & set(lock["packages"]), "only Linux needs these"
    assert lock["packages"]["pydantic-core"]["filename"].endswith("-cp314-cp314-pyemscripten_2026_0_wasm32.whl")


@pytest.mark.slow
@pytest.mark.network
def test_generating_the_locks_again_gives_the_same_files(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    for version in DATASETTE_VERSIONS:
        assert (tmp_path / lock_path(version).name).read_text() == lock_path(version).read_text(), version
