"""Import snapshots of the build's check (``builder.check_snapshots``): their key, storage and pruning.

The slow tests that boot Node with them are in ``test_compat.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder import check_snapshots


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name, body in (("pyodide.asm.wasm", b"wasm"), ("pyodide.asm.mjs", b"asm"), ("pyodide.mjs", b"mjs"),
                       ("python_stdlib.zip", b"stdlib")):  # fmt: skip
        (runtime / name).write_bytes(body)
    lock = tmp_path / "pyodide-lock.json"
    lock.write_text('{"packages": {"datasette": {}}}')
    module = tmp_path / "glasshouse_runtime.py"
    module.write_text("async def start(config): pass\n")
    return {
        "runtime_dir": runtime, "lock_file": lock, "packages": ("datasette",), "stdlib": None, "runtime_module": module,
        "node_version": (22, 22, 0),
    }  # fmt: skip


def test_the_key_changes_with_everything_that_decides_what_is_imported(inputs: dict, tmp_path: Path) -> None:
    key = check_snapshots.snapshot_key(**inputs)
    assert len(key) == 64 and key == check_snapshots.snapshot_key(**inputs)
    other_lock = tmp_path / "other-lock.json"
    other_lock.write_text('{"packages": {"datasette": {}, "datasette-vega": {}}}')
    compiled = tmp_path / "compiled-stdlib.zip"
    compiled.write_bytes(b"compiled")
    other_module = tmp_path / "other_runtime.py"
    other_module.write_text("async def start(config): raise RuntimeError\n")
    changed = [
        {**inputs, "lock_file": other_lock},
        {**inputs, "runtime_module": other_module},
        {**inputs, "packages": ("datasette", "datasette-vega")},
        {**inputs, "stdlib": compiled},
        {**inputs, "node_version": (24, 13, 0)},
    ]
    keys = {check_snapshots.snapshot_key(**change) for change in changed}
    assert len(keys) == len(changed) and key not in keys
    # The runtime's own files, by content: a new wasm is a new key.
    time.sleep(0.01)
    (inputs["runtime_dir"] / "pyodide.asm.wasm").write_bytes(b"another wasm")
    assert check_snapshots.snapshot_key(**inputs) != key


def _made(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    return folder


def test_a_stored_snapshot_is_found_and_a_partial_one_never_is(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    assert check_snapshots.find(root, "k1") is None
    check_snapshots.store(root, "k0", _made(tmp_path / "half", "heap"))
    assert check_snapshots.find(root, "k0") is None and not (root / "k0").exists()
    check_snapshots.store(root, "k1", _made(tmp_path / "made", "heap", "files"))
    found = check_snapshots.find(root, "k1")
    assert found == root / "k1" and (found / "heap").read_bytes() == b"heap"
    # A second build that made the same snapshot keeps the first one.
    check_snapshots.store(root, "k1", _made(tmp_path / "again", "heap", "files"))
    assert sorted(path.name for path in root.iterdir()) == ["k1"]
    check_snapshots.discard(root, "k1")
    assert check_snapshots.find(root, "k1") is None


def test_a_refusal_is_recorded_once_found_by_key_and_never_taken_for_a_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    assert check_snapshots.refused(root, "k1") is None
    check_snapshots.refuse(root, "k1", "No import snapshot: native extension modules are loaded (x)\nmore")
    assert check_snapshots.refused(root, "k1") == "No import snapshot: native extension modules are loaded (x) more"
    assert check_snapshots.find(root, "k1") is None and check_snapshots.refused(root, "k2") is None
    # A snapshot of the same key stored later (another build's) does not replace the record.
    check_snapshots.store(root, "k1", _made(tmp_path / "made", "heap", "files"))
    assert check_snapshots.find(root, "k1") is None and check_snapshots.refused(root, "k1")
    assert sorted(path.name for path in root.iterdir()) == ["k1"]


def test_only_the_most_recently_used_snapshots_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check_snapshots, "KEPT", 2)
    root = tmp_path / "snapshots"
    for n in range(3):
        check_snapshots.store(root, f"k{n}", _made(tmp_path / f"made{n}", "heap", "files"))
        os.utime(root / f"k{n}", (1000 + n, 1000 + n))
    assert sorted(path.name for path in root.iterdir()) == ["k1", "k2"]
    assert check_snapshots.find(root, "k1") is not None  # used now: the newest
    check_snapshots.store(root, "k3", _made(tmp_path / "made3", "heap", "files"))
    assert sorted(path.name for path in root.iterdir()) == ["k1", "k3"]
    # A move that never finished (a build killed in between) goes once it is an hour old.
    stale = root / ".incoming-old"
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    check_snapshots.store(root, "k4", _made(tmp_path / "made4", "heap", "files"))
    assert not stale.exists()
