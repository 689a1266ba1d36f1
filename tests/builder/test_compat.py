"""builder.compat: the build-time check boots the bundle's Pyodide in Node for real.

No mocks: every check runs ``node builder/runtime/compat_check.mjs`` against the Pyodide
npm package and real wheels. Broken bundles are made for real too: a lock that lacks a
dependency, a plugin wheel (built here with zipfile) whose module raises at import, a
runtime module whose ``start`` fails.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

import builder.compat
from builder.bundle import BuildError, BuildRequest, build_bundle
from builder.catalog import load_lock
from builder.compat import (
    CompatError,
    check_bundle,
    default_pages,
    first_table,
    tilde_encode,
)
from builder.storage import LocalStorage
from builder.wheels import closure, fetch_wheels, sha256_file, write_pyodide_lock


def datasette_wheels(cache: Path) -> dict[str, Path]:
    """Datasette 0.65.5's pinned wheels, fetched into ``cache`` if missing: ``{name: path}``."""
    return fetch_wheels(closure(load_lock("0.65.5"), ["datasette"]), cache, log=lambda line: None)


def make_wheel(out_dir: Path, name: str, version: str, modules: dict[str, str], requires: list[str], entry_points: str) -> Path:
    """Write a real ``py3-none-any`` wheel with ``modules`` ({file name: source}) and return its path."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    files = {path: source.encode() for path, source in modules.items()}
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: glasshouse-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in sorted(files.items())
    )
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = out_dir / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in sorted(files.items()):
            zf.writestr(path, data)
    return wheel


# --- plain helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoded"),
    [("Album", "Album"), ("my table", "my+table"), ("a/b.c", "a~2Fb~2Ec"), ("café", "caf~C3~A9"), ("x_y-z", "x_y-z")],
)
def test_names_are_tilde_encoded_as_datasette_does(name: str, encoded: str) -> None:
    assert tilde_encode(name) == encoded


def test_the_table_page_is_the_first_table_in_sqlite_master(tmp_path: Path) -> None:
    database = tmp_path / "t.db"
    conn = sqlite3.connect(database)
    conn.executescript(
        "create table [zeta one] (id integer primary key autoincrement, x);"
        "insert into [zeta one] (x) values (1);"
        "create table alpha (id);"
    )
    conn.close()
    assert first_table(database) == "zeta one"
    assert [page["path"] for page in default_pages(database, "t")] == ["/", "/t", "/t/zeta+one"]
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("create view v as select 1").connection.close()
    assert [page["path"] for page in default_pages(empty, "empty")] == ["/", "/empty"]


def test_every_default_page_must_show_its_report_link_in_the_footer(tmp_path: Path) -> None:
    database = tmp_path / "t.db"
    sqlite3.connect(database).execute("create table [zeta one] (id)").connection.close()
    assert [page["footer"] for page in default_pages(database, "t")] == [
        ['<a href="/_report?url=%2F"'],
        ['<a href="/_report?url=%2Ft"'],
        ['<a href="/_report?url=%2Ft%2Fzeta%2Bone"'],
    ]


def test_a_missing_node_is_a_clear_file_not_found_error(tmp_path: Path, pyodide_runtime: Path, chinook: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Node.js \('no-such-node'\) is not on PATH"):
        check_bundle(
            runtime_dir=pyodide_runtime, cache_dir=tmp_path, lock_file=tmp_path / "lock.json",
            packages=["datasette"], database=chinook, database_name="chinook", node="no-such-node",
        )


# --- real runs in Node ---------------------------------------------------------------------


@pytest.mark.slow
def test_datasette_alone_boots_and_renders_chinook(tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path) -> None:
    lock_file = tmp_path / "pyodide-lock.json"
    write_pyodide_lock(pyodide_runtime / "pyodide-lock.json", wheel_cache, list(datasette_wheels(wheel_cache).values()), lock_file)

    # A description longer than one command-line argument may be: the config goes through a file.
    description = "A music store. " * 15_000
    report = check_bundle(
        runtime_dir=pyodide_runtime, cache_dir=wheel_cache, lock_file=lock_file,
        packages=["datasette"], database=chinook, database_name="chinook",
        metadata={"title": "Chinook", "description": description},
    )

    assert [page.path for page in report.pages] == ["/", "/chinook", "/chinook/Album"]
    assert report.pages[0].bytes > len(description)
    assert all(page.status == 200 and not page.problems for page in report.pages)
    assert all(page.content_type.startswith("text/html") and page.bytes > 1000 for page in report.pages)
    assert 0 < report.pyodide_ms < report.total_ms and report.start_ms > 0
    assert report.summary() == f"booted Pyodide in Node, rendered /, /chinook, /chinook/Album in {report.total_ms} ms"


@pytest.mark.slow
def test_a_lock_that_lacks_a_dependency_fails_with_the_traceback(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    wheels = datasette_wheels(wheel_cache)
    del wheels["markupsafe"]  # Jinja2 and Datasette import it
    lock_file = tmp_path / "pyodide-lock.json"
    write_pyodide_lock(pyodide_runtime / "pyodide-lock.json", wheel_cache, list(wheels.values()), lock_file)

    with pytest.raises(CompatError) as info:
        check_bundle(
            runtime_dir=pyodide_runtime, cache_dir=wheel_cache, lock_file=lock_file,
            packages=["datasette"], database=chinook, database_name="chinook",
        )

    assert info.value.args[0] == "ModuleNotFoundError: No module named 'markupsafe'"
    assert "Traceback (most recent call last):" in info.value.log
    assert 'glasshouse_runtime.py", line' in info.value.log
    assert info.value.pages == []


@pytest.mark.slow
def test_a_plugin_that_raises_at_import_fails_with_its_traceback(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    broken = make_wheel(
        tmp_path,
        "glasshouse-broken-plugin",
        "0.1",
        {"glasshouse_broken_plugin.py": "raise RuntimeError('this plugin cannot start in Pyodide')\n"},
        requires=["datasette"],
        entry_points="[datasette]\nbroken = glasshouse_broken_plugin\n",
    )
    # A cache of its own: Datasette's wheels plus the broken plugin, as <sha256>/<file>.
    cache = tmp_path / "cache"
    paths = []
    for wheel in [*datasette_wheels(wheel_cache).values(), broken]:
        target = cache / sha256_file(wheel) / wheel.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(wheel, target)
        paths.append(target)
    lock_file = tmp_path / "pyodide-lock.json"
    write_pyodide_lock(pyodide_runtime / "pyodide-lock.json", cache, paths, lock_file)

    with pytest.raises(CompatError) as info:
        check_bundle(
            runtime_dir=pyodide_runtime, cache_dir=cache, lock_file=lock_file,
            packages=["datasette", "glasshouse-broken-plugin"], database=chinook, database_name="chinook",
        )

    assert info.value.args[0] == "RuntimeError: this plugin cannot start in Pyodide"
    assert "Traceback (most recent call last):" in info.value.log
    assert 'site-packages/glasshouse_broken_plugin.py", line 1' in info.value.log


@pytest.mark.slow
def test_a_page_without_its_marker_fails_and_names_are_encoded(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path
) -> None:
    database = tmp_path / "odd.db"
    conn = sqlite3.connect(database)
    conn.executescript("create table [my table/1] (id integer primary key, name text); insert into [my table/1] values (1, 'only row');")
    conn.close()
    lock_file = tmp_path / "pyodide-lock.json"
    write_pyodide_lock(pyodide_runtime / "pyodide-lock.json", wheel_cache, list(datasette_wheels(wheel_cache).values()), lock_file)

    with pytest.raises(CompatError) as info:
        check_bundle(
            runtime_dir=pyodide_runtime, cache_dir=wheel_cache, lock_file=lock_file,
            packages=["datasette"], database=database, database_name="odd-db",
            extra_pages=[
                {"path": "/odd-db/my+table~2F1", "contains": ["only row"]},
                # "odd-db" is on the page, but not in its footer; the footer keeps Datasette's own line.
                {"path": "/", "contains": ["no-such-marker"], "lacks": ["odd-db"], "footer": ["Powered by", "odd-db"]},
            ],
        )

    assert info.value.args[0] == 'GET / lacks "no-such-marker"; contains "odd-db"; footer lacks "odd-db"'
    by_path = {(page.path, page.problems) for page in info.value.pages}
    assert ("/odd-db/my+table~2F1", ()) in by_path
    assert [page.status for page in info.value.pages] == [200, 200, 200, 200, 200]
    assert "--- GET / lacks" in info.value.log


# --- wired into the build ------------------------------------------------------------------


def request_for(database: Path, build_id: str) -> BuildRequest:
    return BuildRequest(
        build_id=build_id, database_path=database, database_name="chinook", title="Chinook", description="",
        plugins=("datasette-pretty-json",), datasette_version="0.65.5", source_sha256="0" * 64,
    )


@pytest.mark.slow
def test_a_build_logs_the_compatibility_check(tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path) -> None:
    lines: list[str] = []
    build_bundle(
        request_for(chinook, "bcompat000000001"), storage=LocalStorage(tmp_path / "store"),
        runtime_dir=pyodide_runtime, cache_dir=wheel_cache, on_state=lambda state: None, log=lines.append,
    )
    checks = [line for line in lines if line.startswith("Compatibility check:")]
    assert len(checks) == 1
    assert checks[0].startswith("Compatibility check: booted Pyodide in Node, rendered /, /chinook, /chinook/Album in ")
    assert checks[0].endswith(" ms")
    assert lines.index(checks[0]) < len(lines) - 1 and lines[-1].startswith("Stored ")


@pytest.mark.slow
def test_a_bundle_that_does_not_start_fails_the_build_before_uploading(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_runtime = tmp_path / "glasshouse_runtime.py"
    broken_runtime.write_text("async def start(config):\n    raise RuntimeError('Datasette refused to start')\n")
    monkeypatch.setattr(builder.compat, "RUNTIME_MODULE", broken_runtime)
    states: list[str] = []
    lines: list[str] = []

    with pytest.raises(BuildError) as info:
        build_bundle(
            request_for(chinook, "bcompat000000002"), storage=LocalStorage(tmp_path / "store"),
            runtime_dir=pyodide_runtime, cache_dir=wheel_cache, on_state=states.append, log=lines.append,
        )

    assert info.value.args[0] == (
        "The bundle did not start in Pyodide: RuntimeError: Datasette refused to start. The build log has the traceback."
    )
    assert states == ["validating", "resolving", "bundling"]
    failure = next(line for line in lines if line.startswith("Compatibility check failed:"))
    assert "Traceback (most recent call last):" in failure and "Datasette refused to start" in failure
    assert not any(p.is_file() for p in (tmp_path / "store").rglob("*")), "nothing is uploaded"


@pytest.mark.slow
def test_a_tiny_heap_cap_fails_the_build_with_a_clear_reason_and_leaves_no_temporary_files(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    lines: list[str] = []

    with pytest.raises(BuildError) as info:
        build_bundle(
            request_for(chinook, "bcompat000000003"), storage=LocalStorage(tmp_path / "store"),
            runtime_dir=pyodide_runtime, cache_dir=wheel_cache, on_state=lambda state: None, log=lines.append,
            temp_dir=scratch, node_max_old_space_mb=8,
        )

    assert info.value.args[0].startswith(
        "The build ran out of memory in the compatibility check (Node's heap is capped at 8 MB). Try a smaller database"
    )
    failure = next(line for line in lines if line.startswith("Compatibility check failed:"))
    assert "JavaScript heap out of memory" in failure  # V8's own words, for the operator
    assert list(scratch.iterdir()) == []
    assert not any(p.is_file() for p in (tmp_path / "store").rglob("*")), "nothing is uploaded"


# --- publisher metadata reaches Datasette, in both configuration styles --------------------

METADATA = {
    "license": "CC BY 4.0",
    "databases": {
        "chinook": {
            "description": "A music store",
            "queries": {"longest": {"title": "Longest tracks", "sql": "select Name from Track order by Milliseconds desc limit 3"}},
            "tables": {"Album": {"sort_desc": "AlbumId", "description": "Albums of the store"}},
        }
    },
}


def test_metadata_is_split_into_datasette_1_configuration_and_metadata() -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("runtime_split", builder.compat.RUNTIME_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # pyodide-lock evaluates markers for the host when a "pyodide" module is loaded: none may be.
    assert "pyodide" not in sys.modules
    config, metadata = module.split_for_datasette_1({**METADATA, "plugins": {"datasette-x": {"a": 1}}})
    assert config == {
        "plugins": {"datasette-x": {"a": 1}},
        "databases": {"chinook": {"queries": METADATA["databases"]["chinook"]["queries"], "tables": {"Album": {"sort_desc": "AlbumId"}}}},
    }
    assert metadata == {
        "license": "CC BY 4.0",
        "databases": {"chinook": {"description": "A music store", "tables": {"Album": {"description": "Albums of the store"}}}},
    }


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.65.5", "1.0a41"])
def test_canned_queries_license_and_table_options_work_with_each_datasette(
    version: str, tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    build_bundle(
        BuildRequest(
            build_id="meta", database_path=chinook, database_name="chinook", title="T", description="",
            plugins=(), datasette_version=version, source_sha256="0" * 64, metadata=METADATA,
        ),
        storage=storage, runtime_dir=pyodide_runtime, cache_dir=wheel_cache,
        on_state=lambda state: None, log=lambda line: None,
    )  # fmt: skip
    check_bundle(
        runtime_dir=pyodide_runtime, cache_dir=wheel_cache,
        lock_file=tmp_path / "store" / "builds" / "meta" / "pyodide-lock.json",
        packages=["datasette"], database=tmp_path / "store" / "builds" / "meta" / "data" / "chinook.db",
        database_name="chinook", metadata={"title": "T", **METADATA},
        extra_pages=[
            {"path": "/chinook/longest", "contains": ["Longest tracks", "Occupation / Precipice"]},
            {"path": "/", "contains": ["CC BY 4.0"]},
            {"path": "/chinook/Album", "contains": ["Albums of the store", "Koyaanisqatsi"], "lacks": ["Facelift"]},
        ],
    )  # fmt: skip
