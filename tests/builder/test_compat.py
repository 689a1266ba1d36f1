"""builder.compat: the build-time check boots the bundle's Pyodide in Node for real.

No mocks: every check runs ``node builder/runtime/node/compat_check.mjs`` against the Pyodide
npm package and real wheels. Broken bundles are made for real too: a lock that lacks a
dependency, a plugin wheel (built here with zipfile) whose module raises at import, a
runtime module whose ``start`` fails.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import socketserver
import sqlite3
import subprocess
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import builder.compat
from builder import check_snapshots
from builder.catalog import load_lock
from builder.compat import (
    CompatError,
    CompatRequest,
    NodeSandbox,
    SandboxUnavailable,
    check_bundle,
    checked_static_files,
    default_pages,
    first_table,
    network_namespace,
    parse_node_version,
    permission_options,
    stage_wheels,
    tilde_encode,
)
from builder.director import BuildDirector, BuildError, BuildRequest
from builder.pyodide import PYODIDE_VERSION
from builder.stdlib import compiled_stdlib
from builder.storage import LocalStorage
from builder.wheels import closure, fetch_wheels, sha256_file, write_pyodide_lock
from tests.support.loopback import LoopbackServer


def datasette_wheels(cache: Path) -> dict[str, Path]:
    """Datasette 0.65.5's pinned wheels, fetched into ``cache`` if missing: ``{name: path}``."""
    return fetch_wheels(closure(load_lock("0.65.5"), ["datasette"]), cache, log=lambda line: None)


def datasette_lock(tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path) -> Path:
    """``tmp_path / "pyodide-lock.json"``: the lock of Datasette 0.65.5 alone, its wheels in ``wheel_cache``."""
    lock_file = tmp_path / "pyodide-lock.json"
    write_pyodide_lock(
        pyodide_runtime / "pyodide-lock.json", wheel_cache, list(datasette_wheels(wheel_cache).values()), lock_file
    )
    return lock_file


def make_wheel(
    out_dir: Path, name: str, version: str, modules: dict[str, str], requires: list[str], entry_points: str
) -> Path:
    """Write a real ``py3-none-any`` wheel with ``modules`` ({file name: source}) and return its path."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    files = {path: source.encode() for path, source in modules.items()}
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: glasshouse-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
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


def lock_with_plugin(tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, plugin: Path) -> tuple[Path, Path]:
    """A wheel cache of its own (Datasette's wheels plus ``plugin``, as ``<sha256>/<file>``) and its lock: ``(cache, lock)``."""
    cache = tmp_path / "cache"
    paths = []
    for wheel in [*datasette_wheels(wheel_cache).values(), plugin]:
        target = cache / sha256_file(wheel) / wheel.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(wheel, target)
        paths.append(target)
    lock_file = tmp_path / "pyodide-lock.json"
    write_pyodide_lock(pyodide_runtime / "pyodide-lock.json", cache, paths, lock_file)
    return cache, lock_file


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
            CompatRequest(
                runtime_dir=pyodide_runtime,
                cache_dir=tmp_path,
                lock_file=tmp_path / "lock.json",
                packages=("datasette",),
                database=chinook,
                database_name="chinook",
                node="no-such-node",
            )
        )


# --- real runs in Node ---------------------------------------------------------------------


@pytest.mark.slow
def test_datasette_alone_boots_and_renders_chinook_with_the_builds_table_counts(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    from builder.tables import table_counts

    lock_file = datasette_lock(tmp_path, pyodide_runtime, wheel_cache)

    # A description longer than one command-line argument may be: the config goes through a file.
    description = "A music store. " * 15_000
    # The build's table counts become Datasette's inspect data: a count no table of Chinook has
    # shows only if Datasette took them instead of counting.
    inspect = {"size": chinook.stat().st_size, "sha256": "ab" * 32, "table_counts": {**table_counts(chinook), "Album": 4242}}
    report = check_bundle(
        CompatRequest(
            runtime_dir=pyodide_runtime,
            cache_dir=wheel_cache,
            lock_file=lock_file,
            packages=("datasette",),
            database=chinook,
            database_name="chinook",
            metadata={"title": "Chinook", "description": description},
            inspect=inspect,
            extra_pages=({"path": "/chinook", "contains": ["4,242 rows", "8,715 rows"]},),
        )
    )

    assert [page.path for page in report.pages] == ["/", "/chinook", "/chinook/Album", "/chinook"]
    assert report.pages[0].bytes > len(description)
    assert all(page.status == 200 and not page.problems for page in report.pages)
    assert all(page.content_type.startswith("text/html") and page.bytes > 1000 for page in report.pages)
    assert 0 < report.pyodide_ms < report.total_ms and report.start_ms > 0
    assert report.summary() == (
        f"booted Pyodide in Node, rendered /, /chinook, /chinook/Album, /chinook in {report.total_ms} ms; sandbox: {report.sandbox}"
    )
    assert report.stages() == (
        f"Pyodide {report.pyodide_ms:,} ms, packages {report.packages_ms:,} ms, Datasette start {report.start_ms:,} ms, "
        f"pages: / {report.pages[0].ms:,} ms, /chinook {report.pages[1].ms:,} ms, /chinook/Album {report.pages[2].ms:,} ms, "
        f"/chinook {report.pages[3].ms:,} ms; the rest (bytecode, static files) "
        f"{report.total_ms - report.pyodide_ms - report.packages_ms - report.start_ms - sum(p.ms for p in report.pages):,} ms"
    )
    assert (
        report.sandbox.startswith("Node ")
        and "permission model, empty environment, no-network preload" in report.sandbox
    )


@pytest.mark.slow
def test_the_import_snapshot_is_made_in_a_run_that_sees_nothing_of_the_publishers_and_every_check_restores_it(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    lock_file = datasette_lock(tmp_path, pyodide_runtime, wheel_cache)
    snapshots = tmp_path / "snapshots"
    marker = "Snapshot marker 6f1c, the title of the publisher"
    request = CompatRequest(
        runtime_dir=pyodide_runtime, cache_dir=wheel_cache, lock_file=lock_file, packages=("datasette",),
        database=chinook, database_name="chinook", metadata={"title": marker}, import_snapshots=snapshots,
        bytecode_out=tmp_path / "bytecode.zip", static_out=tmp_path / "static",
        extra_pages=({"path": "/", "contains": [marker]}, {"path": "/chinook/Artist", "contains": ["AC/DC"]}),
    )  # fmt: skip

    # The first publisher's check already restores it: a run of its own made it before.
    first = check_bundle(request)
    assert first.snapshot == "restored", first.log[-2000:]
    [folder] = snapshots.iterdir()
    heap, files = (folder / "heap").read_bytes(), (folder / "files").read_bytes()
    assert len(heap) > 10_000_000 and b"datasette/app.py" in files
    kept = check_snapshots.outputs(folder)
    assert kept is not None and "/-/static/app.css" in kept.static_urls
    kept_bytecode = kept.bytecode.read_bytes()
    # Made on the neutral table, with no metadata: nothing of the publisher's is in it or in the
    # bytecode and static files that later bundles of the set copy.
    for publishers in (marker.encode(), b"AC/DC", b"Antonio Carlos Jobim"):
        assert publishers not in heap and publishers not in files and publishers not in kept_bytecode
    assert b"Nairobi" not in heap, "the snapshot is taken before the neutral database reaches Python too"
    assert (tmp_path / "bytecode.zip").read_bytes() == kept_bytecode and len(kept_bytecode) > 100_000
    assert first.static_files == kept.static_urls and (tmp_path / "static" / "-" / "static" / "app.css").is_file()
    assert "import snapshot restored" in first.stages() and "from the import snapshot" in first.summary()
    assert all(page.status == 200 and not page.problems for page in first.pages)

    # A damaged snapshot: the check boots normally, passes, and the snapshot is deleted.
    (folder / "heap").write_bytes(heap[: len(heap) // 2])
    fallback = check_bundle(request)
    assert fallback.snapshot == "" and all(page.status == 200 and not page.problems for page in fallback.pages)
    assert not folder.exists()


@pytest.mark.slow
def test_a_set_whose_snapshot_python_refused_boots_normally_without_the_snapshots_own_check(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_file = datasette_lock(tmp_path, pyodide_runtime, wheel_cache)
    snapshots = tmp_path / "snapshots"
    request = CompatRequest(
        runtime_dir=pyodide_runtime, cache_dir=wheel_cache, lock_file=lock_file, packages=("datasette",),
        database=chinook, database_name="chinook", import_snapshots=snapshots,
    )  # fmt: skip
    key = check_snapshots.snapshot_key(
        runtime_dir=pyodide_runtime, lock_file=lock_file, packages=("datasette",), stdlib=None,
        runtime_module=builder.compat.RUNTIME_MODULE, node_version=builder.compat.node_version(shutil.which("node") or "node"),
    )  # fmt: skip
    # As a check records it when Python refuses (Datasette 1.0 loads pydantic_core, a native module).
    check_snapshots.refuse(snapshots, key, "No import snapshot: native extension modules are loaded (demo)")
    runs: list[dict[str, Any]] = []
    run_node = builder.compat._run_node

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(kwargs)
        return run_node(*args, **kwargs)

    monkeypatch.setattr(builder.compat, "_run_node", counted)
    report = check_bundle(request)
    assert report.snapshot == "" and all(page.status == 200 and not page.problems for page in report.pages)
    assert [(run["restore"], run["make"]) for run in runs] == [(None, False)], "one normal boot, no snapshot run"
    assert check_snapshots.find(snapshots, key) is None
    assert check_snapshots.refused(snapshots, key) == "No import snapshot: native extension modules are loaded (demo)"


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
            CompatRequest(
                runtime_dir=pyodide_runtime,
                cache_dir=wheel_cache,
                lock_file=lock_file,
                packages=("datasette",),
                database=chinook,
                database_name="chinook",
            )
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
    cache, lock_file = lock_with_plugin(tmp_path, pyodide_runtime, wheel_cache, broken)

    with pytest.raises(CompatError) as info:
        check_bundle(
            CompatRequest(
                runtime_dir=pyodide_runtime,
                cache_dir=cache,
                lock_file=lock_file,
                packages=("datasette", "glasshouse-broken-plugin"),
                database=chinook,
                database_name="chinook",
            )
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
    conn.executescript(
        "create table [my table/1] (id integer primary key, name text); insert into [my table/1] values (1, 'only row');"
    )
    conn.close()
    lock_file = datasette_lock(tmp_path, pyodide_runtime, wheel_cache)

    with pytest.raises(CompatError) as info:
        check_bundle(
            CompatRequest(
                runtime_dir=pyodide_runtime,
                cache_dir=wheel_cache,
                lock_file=lock_file,
                packages=("datasette",),
                database=database,
                database_name="odd-db",
                extra_pages=(
                    {"path": "/odd-db/my+table~2F1", "contains": ["only row"]},
                    # "odd-db" is on the page, but not in its footer; the footer keeps Datasette's own line.
                    {"path": "/", "contains": ["no-such-marker"], "lacks": ["odd-db"],
                     "footer": ["Powered by", "odd-db"]},
                ),
            )
        )

    assert info.value.args[0] == 'GET / lacks "no-such-marker"; contains "odd-db"; footer lacks "odd-db"'
    by_path = {(page.path, page.problems) for page in info.value.pages}
    assert ("/odd-db/my+table~2F1", ()) in by_path
    assert [page.status for page in info.value.pages] == [200, 200, 200, 200, 200]
    assert "--- GET / lacks" in info.value.log


# --- wired into the build ------------------------------------------------------------------


def request_for(database: Path, build_id: str, runtime_dir: Path, cache_dir: Path, **worker: Any) -> BuildRequest:
    """A build of ``database`` with datasette-pretty-json; ``worker``: ``temp_dir``, ``node_max_old_space_mb``."""
    return BuildRequest(
        build_id=build_id,
        database_path=database,
        database_name="chinook",
        title="Chinook",
        description="",
        plugins=("datasette-pretty-json",),
        datasette_version="0.65.5",
        source_sha256="0" * 64,
        runtime_dir=runtime_dir,
        cache_dir=cache_dir,
        **worker,
    )


@pytest.mark.slow
def test_a_build_logs_the_compatibility_check(chinook_build: Any) -> None:
    # The session's build of Chinook with datasette-pretty-json (tests/builder/conftest.py).
    lines = chinook_build.lines
    checks = [line for line in lines if line.startswith("Compatibility check:")]
    assert len(checks) == 1
    # A normal boot, or the import snapshot an earlier check of the same set left (test_compat's own
    # snapshot test covers both lines).
    assert re.match(
        r"Compatibility check: (booted Pyodide|restored Pyodide with Datasette imported from the import snapshot) in Node, "
        r"rendered /, /chinook, /chinook/Album in ",
        checks[0],
    )
    # The build log names the sandbox's layers, so an operator sees when one is missing.
    assert re.search(
        r" in \d+ ms; sandbox: Node \d+\.\d+\.\d+ permission model, empty environment, no-network preload, ", checks[0]
    )
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
        BuildDirector(
            request_for(chinook, "bcompat000000002", pyodide_runtime, wheel_cache),
            storage=LocalStorage(tmp_path / "store"),
            on_state=states.append,
            log=lines.append,
        ).run()

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
        BuildDirector(
            request_for(chinook, "bcompat000000003", pyodide_runtime, wheel_cache, temp_dir=scratch, node_max_old_space_mb=8),
            storage=LocalStorage(tmp_path / "store"),
            on_state=lambda state: None,
            log=lines.append,
        ).run()

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
            "queries": {
                "longest": {
                    "title": "Longest tracks",
                    "sql": "select Name from Track order by Milliseconds desc limit 3",
                }
            },
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
        "databases": {
            "chinook": {
                "queries": METADATA["databases"]["chinook"]["queries"],
                "tables": {"Album": {"sort_desc": "AlbumId"}},
            }
        },
    }
    assert metadata == {
        "license": "CC BY 4.0",
        "databases": {
            "chinook": {"description": "A music store", "tables": {"Album": {"description": "Albums of the store"}}}
        },
    }


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.65.5", "1.0a41"])
def test_canned_queries_license_and_table_options_work_with_each_datasette(
    version: str, tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path
) -> None:
    storage = LocalStorage(tmp_path / "store")
    BuildDirector(
        BuildRequest(
            build_id="meta", database_path=chinook, database_name="chinook", title="T", description="",
            plugins=(), datasette_version=version, source_sha256="0" * 64, metadata=METADATA,
            runtime_dir=pyodide_runtime, cache_dir=wheel_cache,
        ),
        storage=storage, on_state=lambda state: None, log=lambda line: None,
    ).run()  # fmt: skip
    # As the build's own check: the same standard library, and the import snapshot that check left.
    stdlib = compiled_stdlib(pyodide_runtime, wheel_cache, PYODIDE_VERSION, log=lambda line: None)
    check_bundle(
        CompatRequest(
            runtime_dir=pyodide_runtime, cache_dir=wheel_cache, stdlib=stdlib,
            import_snapshots=wheel_cache / check_snapshots.FOLDER,
            lock_file=tmp_path / "store" / "builds" / "meta" / "pyodide-lock.json",
            packages=("datasette",), database=tmp_path / "store" / "builds" / "meta" / "data" / "chinook.db",
            database_name="chinook", metadata={"title": "T", **METADATA},
            extra_pages=(
                {"path": "/chinook/longest", "contains": ["Longest tracks", "Occupation / Precipice"]},
                {"path": "/", "contains": ["CC BY 4.0"]},
                {"path": "/chinook/Album", "contains": ["Albums of the store", "Koyaanisqatsi"], "lacks": ["Facelift"]},
            ),
        )
    )  # fmt: skip
    if version.startswith("1."):
        # Python refuses an import snapshot of Datasette 1.0 (pydantic_core is a native module): recorded once.
        folder = wheel_cache / check_snapshots.FOLDER
        reasons = [check_snapshots.refused(folder, path.name) for path in folder.iterdir()]
        assert any(reason and "pydantic_core" in reason for reason in reasons), reasons


# --- the sandbox: a hostile plugin inside Pyodide tries to get out ------------------------

#: A Datasette plugin as a malicious catalog entry would ship it. Uploaded content has no honest
#: way to run Python in the check (metadata is data: builder.metadata refuses $env/$file, canned
#: queries are SQL), so the hostile code comes the way plugin code does: a wheel with a
#: ``datasette`` entry point. At import it makes each synchronous attempt, in Datasette's
#: ``startup`` hook the ones that wait for an answer; it prints one line per attempt:
#: ``SANDBOX-PROBE <name>: denied (<why>)`` or ``SANDBOX-PROBE <name>: ALLOWED (<what it got>)``.
PROBE_PLUGIN = """
import asyncio
import js
from datasette import hookimpl
from pyodide.ffi import create_once_callable, to_js

TARGETS = {targets!r}


def report(name, outcome):
    print(f"SANDBOX-PROBE {{name}}: {{outcome}}")


def outcome(result=None, error=None):
    if error is not None:
        first = (str(error).strip().splitlines() or [""])[0]
        return f"denied ({{type(error).__name__}}: {{first[:160]}})"
    return f"ALLOWED ({{str(result)[:80]!r}})"


def attempt(name, action):
    try:
        result = action()
    except Exception as exc:
        report(name, outcome(error=exc))
    else:
        report(name, outcome(result))


def node(module):
    return js.process.getBuiltinModule(module)


def env(name):
    value = js.Reflect.get(js.process.env, name)
    if value is None:
        raise LookupError(f"{{name}} is not in Node's environment")
    return value


for name in ("AWS_SECRET_ACCESS_KEY", "SECRET_KEY", "DATABASE_URL"):
    attempt(f"env {{name}}", lambda name=name: env(name))
attempt("read /etc/passwd", lambda: node("fs").readFileSync("/etc/passwd", "utf8"))
attempt("read outside file", lambda: node("fs").readFileSync(TARGETS["secret_file"], "utf8"))
attempt("write outside", lambda: node("fs").writeFileSync(TARGETS["outside_file"], "written by the plugin"))
attempt("spawn child process", lambda: node("child_process").execSync(
    f"echo spawned > {{TARGETS['spawn_marker']}}; echo ran", to_js({{"encoding": "utf8"}}, dict_converter=js.Object.fromEntries)
))
attempt("signal the parent", lambda: js.process.kill(js.process.ppid, 0))


async def connected(socket, request):
    future = asyncio.get_running_loop().create_future()
    socket.on("connect", create_once_callable(lambda *args: future.done() or future.set_result("connected")))
    socket.on("error", create_once_callable(lambda error: future.done() or future.set_exception(OSError(error.code))))
    socket.write(request)
    try:
        return await asyncio.wait_for(future, 10)
    finally:
        socket.destroy()


async def attempt_async(name, action):
    try:
        result = await action()
    except BaseException as exc:
        report(name, outcome(error=exc))
    else:
        report(name, outcome(result))


async def fetch():
    response = await js.fetch(f"http://127.0.0.1:{{TARGETS['port']}}/fetch")
    return f"HTTP {{response.status}}"


@hookimpl
def startup(datasette):
    async def probes():
        request = "GET /{{}} HTTP/1.0\\r\\n\\r\\n"
        await attempt_async("tcp connect", lambda: connected(node("net").connect(TARGETS["port"], "127.0.0.1"), request.format("tcp")))
        await attempt_async("unix socket connect", lambda: connected(node("net").connect(TARGETS["unix_socket"]), request.format("unix")))
        await attempt_async("fetch", fetch)
        await attempt_async("dns lookup", lambda: node("dns").promises.lookup("localhost"))

    return probes
"""
PROBES = [
    "env AWS_SECRET_ACCESS_KEY", "env SECRET_KEY", "env DATABASE_URL", "read /etc/passwd", "read outside file",
    "write outside", "spawn child process", "signal the parent", "tcp connect", "unix socket connect", "fetch",
    "dns lookup",
]  # fmt: skip


class Listeners:
    """An HTTP server on a loopback TCP port (``loopback_server``) and one on a Unix socket;
    ``requests`` lists the paths each got."""

    def __init__(self, folder: Path, loopback_server: Callable[..., LoopbackServer]) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.socket_path = folder / "listener.sock"
        self.port = loopback_server(Handler).port
        self.unix = UnixServer(str(self.socket_path), Handler)
        self.unix.server_address = ("local", 0)  # BaseHTTPRequestHandler wants a (host, port) pair
        threading.Thread(target=self.unix.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.unix.shutdown()
        self.unix.server_close()


@pytest.fixture
def listeners(tmp_path: Path, loopback_server: Callable[..., LoopbackServer]) -> Iterator[Listeners]:
    servers = Listeners(tmp_path, loopback_server)
    yield servers
    servers.close()


def run_probe_plugin(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path, listeners: Listeners
) -> tuple[str, dict[str, Path]]:
    """Build the probe plugin's wheel, boot it with Datasette in ``check_bundle``; return ``(log, targets)``."""
    targets = {
        "secret_file": tmp_path / "secret.txt", "outside_file": tmp_path / "outside.txt",
        "spawn_marker": tmp_path / "spawned.txt", "unix_socket": listeners.socket_path,
    }  # fmt: skip
    targets["secret_file"].write_text("not for plugins\n")
    source = PROBE_PLUGIN.format(targets={**{k: str(v) for k, v in targets.items()}, "port": listeners.port})
    probe = make_wheel(
        tmp_path, "glasshouse-probe-plugin", "0.1", {"glasshouse_probe_plugin.py": source},
        requires=["datasette"], entry_points="[datasette]\nprobe = glasshouse_probe_plugin\n",
    )  # fmt: skip
    cache, lock_file = lock_with_plugin(tmp_path, pyodide_runtime, wheel_cache, probe)
    report = check_bundle(
        CompatRequest(
            runtime_dir=pyodide_runtime, cache_dir=cache, lock_file=lock_file,
            packages=("datasette", "glasshouse-probe-plugin"), database=chinook, database_name="chinook",
            bytecode_out=tmp_path / "out" / "bytecode.zip", static_out=tmp_path / "out" / "static",
        )
    )  # fmt: skip
    return report.log, targets


def probe_outcomes(log: str) -> dict[str, str]:
    """``{probe name: "denied (...)" or "ALLOWED (...)"}`` from the probe plugin's lines in ``log``."""
    outcomes = {}
    for line in log.splitlines():
        if line.startswith("SANDBOX-PROBE "):
            name, _, outcome = line.removeprefix("SANDBOX-PROBE ").partition(": ")
            outcomes[name] = outcome
    return outcomes


FAKE_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret",
    "SECRET_KEY": "fake-django-secret",
    "DATABASE_URL": "postgres://fake",
}


@pytest.fixture
def probe(
    tmp_path: Path, pyodide_runtime: Path, wheel_cache: Path, chinook: Path, listeners: Listeners,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[], tuple[str, dict[str, str], dict[str, Path]]]:  # fmt: skip
    """``probe() -> (log, outcomes, targets)``: the probe plugin's check, with fake secrets in the worker's environment."""
    for name, value in FAKE_SECRETS.items():
        monkeypatch.setenv(name, value)

    def run() -> tuple[str, dict[str, str], dict[str, Path]]:
        log, targets = run_probe_plugin(tmp_path, pyodide_runtime, wheel_cache, chinook, listeners)
        return log, probe_outcomes(log), targets

    return run


@pytest.mark.slow
def test_a_hostile_plugin_in_the_check_is_denied_every_way_out(probe: Callable, listeners: Listeners) -> None:
    log, outcomes, targets = probe()

    print("\n".join(f"{name}: {outcome}" for name, outcome in outcomes.items()))  # shown with -s: the build log's words
    assert sorted(outcomes) == sorted(PROBES), log
    allowed = {name: outcome for name, outcome in outcomes.items() if not outcome.startswith("denied (")}
    assert allowed == {}, f"the sandbox let these through: {allowed}"
    assert not any(secret in log for secret in FAKE_SECRETS.values())
    assert "root:" not in log and "not for plugins" not in log
    assert not targets["outside_file"].exists() and not targets["spawn_marker"].exists()
    assert listeners.requests == [], "no connection reached the test's listeners"


@pytest.mark.slow
def test_without_the_sandbox_the_same_plugin_gets_out_every_way(
    probe: Callable, listeners: Listeners, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe is real: with Node run as before the sandbox (parent's environment, no flags), every attempt works."""
    monkeypatch.setattr(
        builder.compat, "node_sandbox",
        lambda node_path, *, read, write, scratch: NodeSandbox([], [], {**os.environ, "TMPDIR": str(scratch)}, "none"),
    )  # fmt: skip

    log, outcomes, targets = probe()

    denied = {name: outcome for name, outcome in outcomes.items() if not outcome.startswith("ALLOWED (")}
    assert sorted(outcomes) == sorted(PROBES) and denied == {}, log
    assert "fake-aws-secret" in outcomes["env AWS_SECRET_ACCESS_KEY"]
    assert targets["outside_file"].read_text() == "written by the plugin"
    assert targets["spawn_marker"].read_text() == "spawned\n"
    assert sorted(listeners.requests) == ["/fetch", "/tcp", "/unix"]


# --- the sandbox's parts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "options"),
    [
        ("v18.19.0", None),
        ("v20.19.5", None),  # before the January 2026 permission-model fixes
        ("v20.20.2", ["--experimental-permission", "--disable-warning=ExperimentalWarning"]),
        ("v21.7.3", None),  # out of support, never fixed
        ("v22.21.1", None),
        ("v22.22.0", ["--permission"]),
        ("v23.11.0", None),
        ("v24.13.0", ["--permission"]),
        ("v25.3.0", ["--permission"]),
        ("v26.0.0-pre", ["--permission"]),
    ],
)
def test_the_permission_model_is_switched_on_as_each_node_version_spells_it(
    version: str, options: list[str] | None
) -> None:
    if options is None:
        with pytest.raises(SandboxUnavailable, match=r"cannot sandbox the build's compatibility check.*20\.20\.0\+"):
            permission_options(parse_node_version(version))
    else:
        assert permission_options(parse_node_version(version)) == options


def test_a_node_too_old_to_sandbox_fails_the_check_before_it_runs(
    tmp_path: Path, pyodide_runtime: Path, chinook: Path
) -> None:
    old_node = tmp_path / "node"
    old_node.write_text("#!/bin/sh\necho v18.19.0\n")
    old_node.chmod(0o755)
    lock_file = tmp_path / "pyodide-lock.json"
    lock_file.write_text('{"packages": {}}')

    with pytest.raises(SandboxUnavailable) as info:
        check_bundle(
            CompatRequest(
                runtime_dir=pyodide_runtime, cache_dir=tmp_path, lock_file=lock_file, packages=("datasette",),
                database=chinook, database_name="chinook", node=str(old_node),
            )
        )  # fmt: skip

    assert info.value.args[0].startswith("Node.js 18.19.0 cannot sandbox the build's compatibility check")
    assert "deploy/install-node.sh" in info.value.args[0]
    assert not isinstance(info.value, CompatError), "the worker's setup is at fault, not the bundle"


def test_only_the_wheels_of_the_lock_are_staged_and_links_are_the_caches_files(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for name in ("aa/one-1.0-py3-none-any.whl", "bb/two-1.0-py3-none-any.whl", "cc/other-1.0-py3-none-any.whl"):
        (cache / name).parent.mkdir(parents=True)
        (cache / name).write_bytes(name.encode())
    (tmp_path / "secret.whl").write_text("outside the cache")
    lock_file = tmp_path / "lock.json"
    names = [
        "aa/one-1.0-py3-none-any.whl",
        "bb/two-1.0-py3-none-any.whl",
        "../secret.whl",
        "https://x/y.whl",
        "dd/gone.whl",
    ]
    lock_file.write_text(json.dumps({"packages": {str(i): {"file_name": name} for i, name in enumerate(names)}}))

    staged = tmp_path / "staged"
    stage_wheels(lock_file, cache, staged)

    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*.whl")) == names[:2]
    assert (staged / names[0]).stat().st_ino == (cache / names[0]).stat().st_ino  # a hard link: no copy


@pytest.mark.parametrize(
    "url",
    [
        "/-/static/../../secret.txt",
        "/-/static/./app.css",
        "/-/static//app.css",
        "/etc/passwd",
        "/-/static/link.css",
        "/-/static/missing.css",
        7,
    ],
)
def test_a_forged_report_cannot_name_files_outside_the_static_folder(tmp_path: Path, url: object) -> None:
    """The report comes from the process that ran the plugins: its list of static files is checked like input."""
    static = tmp_path / "static"
    (static / "-" / "static").mkdir(parents=True)
    (static / "-" / "static" / "app.css").write_text("body {}")
    (tmp_path / "secret.txt").write_text("secret")
    (static / "-" / "static" / "link.css").symlink_to(tmp_path / "secret.txt")

    assert checked_static_files(["/-/static/app.css"], static) == ["/-/static/app.css"]
    with pytest.raises(CompatError, match="the check reported a static file that it did not write under its folder"):
        checked_static_files(["/-/static/app.css", url], static)


def test_node_in_the_network_namespace_reaches_no_listener_on_this_machine(
    tmp_path: Path, listeners: Listeners
) -> None:
    prefix, problem = network_namespace(shutil.which("node"))
    if problem:
        pytest.skip(f"this machine gives no network namespace to this user: {problem}")
    script = (
        f"const s = require('net').connect({listeners.port}, '127.0.0.1');"
        "s.on('connect', () => { console.log('connected'); s.end('GET /namespace HTTP/1.0\\r\\n\\r\\n'); });"
        "s.on('error', (e) => console.log('error', e.code));"
    )

    outside = subprocess.run(
        [shutil.which("node"), "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    inside = subprocess.run(
        [*prefix, shutil.which("node"), "-e", script], capture_output=True, text=True, timeout=30, check=True
    )

    assert inside.stdout.strip() in ("error ENETUNREACH", "error ECONNREFUSED"), inside.stdout + inside.stderr
    assert outside.stdout.strip() == "connected"  # the listener is there for Node outside the namespace
    assert listeners.requests == ["/namespace"]


def test_a_path_inside_a_granted_folder_is_left_out_so_node_keeps_granting_the_folder(tmp_path: Path) -> None:
    (tmp_path / "runtime" / "js").mkdir(parents=True)
    (tmp_path / "runtime" / "module.py").write_text("")
    (tmp_path / "lock.json").write_text("{}")
    paths = [tmp_path / "runtime", tmp_path / "runtime" / "module.py", tmp_path / "lock.json", tmp_path / "runtime"]

    assert builder.compat._outermost(paths) == [tmp_path / "runtime", tmp_path / "lock.json"]
