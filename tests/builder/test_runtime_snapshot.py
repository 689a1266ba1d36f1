"""The Python half of the runtime's memory snapshot (glasshouse_runtime.prepare_snapshot and resume), in CPython.

Datasette itself runs in Pyodide only, so a stand-in with Datasette's attributes (``databases``
with ``_read_connection``, ``_write_connection``, ``_all_file_connections``; ``_secret``,
``_root_token``, ``app()``) takes its place; the SQLite connections are real.
"""

from __future__ import annotations

import importlib.util
import random
import sqlite3
import threading
import types
from pathlib import Path
from typing import Any

import pytest

import builder.compat


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The current asyncio event loop, as Pyodide always has one (its WebLoop).

    ``get_event_loop`` is pointed at it: in a session that also ran browser tests, Playwright's
    sync API leaves its own loop running on this thread, with its own tasks.
    """
    import asyncio

    loop = asyncio.new_event_loop()
    monkeypatch.setattr(asyncio, "get_event_loop", lambda: loop)
    yield loop
    loop.close()


@pytest.fixture
def runtime(loop: Any) -> Any:
    """A fresh copy of glasshouse_runtime.py as a module (with a current event loop)."""
    spec = importlib.util.spec_from_file_location("runtime_snapshot", builder.compat.RUNTIME_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeDatabase:
    def __init__(self, path: Path | None = None, memory_name: str | None = None) -> None:
        self.memory_name = memory_name
        self.is_memory = False
        self._read_connection = sqlite3.connect(path) if path else sqlite3.connect(":memory:")
        self._write_connection = None
        self._all_file_connections = [self._read_connection] if path else []


class FakeDatasette:
    def __init__(self, databases: dict[str, FakeDatabase]) -> None:
        self.databases = databases
        self._secret = "s" * 64
        self._root_token = "r" * 64
        self.apps_made = 0

    def app(self) -> object:
        self.apps_made += 1
        return (self._secret, self.apps_made)


def test_preparing_a_snapshot_closes_file_connections_and_keeps_in_memory_ones(runtime: Any, tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "data.db").close()
    data = FakeDatabase(tmp_path / "data.db")
    internal = FakeDatabase(memory_name="internal")
    file_connection = data._read_connection
    runtime._datasette = FakeDatasette({"data": data, "_internal": internal})

    assert runtime.prepare_snapshot(modules={}) == ""

    assert data._read_connection is None and data._all_file_connections == []
    with pytest.raises(sqlite3.ProgrammingError):
        file_connection.execute("select 1")  # closed: no file handle is left in the snapshot
    assert internal._read_connection.execute("select 1").fetchone() == (1,)


def test_no_snapshot_once_a_native_extension_is_loaded(runtime: Any) -> None:
    runtime._datasette = FakeDatasette({})
    native = types.ModuleType("fast_thing")
    native.__file__ = "/lib/python3.14/site-packages/fast_thing.cpython-314-wasm32-emscripten.so"
    pure = types.ModuleType("slow_thing")
    pure.__file__ = "/lib/python3.14/site-packages/slow_thing.py"

    assert runtime.prepare_snapshot(modules={"slow_thing": pure}) == ""
    assert runtime.prepare_snapshot(modules={"slow_thing": pure, "fast_thing": native}) == "native extension modules are loaded (fast_thing)"


def test_no_snapshot_while_asyncio_tasks_are_pending(runtime: Any, loop: Any) -> None:
    import asyncio

    runtime._datasette = FakeDatasette({})
    task = loop.create_task(asyncio.sleep(10))
    assert runtime.prepare_snapshot(modules={}) == "1 asyncio tasks are still pending"
    task.cancel()
    # On a thread of its own: Playwright may keep a loop running on this one.
    finishing = threading.Thread(target=loop.run_until_complete, args=(asyncio.gather(task, return_exceptions=True),))
    finishing.start()
    finishing.join()
    assert runtime.prepare_snapshot(modules={}) == ""


def test_a_restored_python_gets_its_own_random_sequence_and_signing_secret(runtime: Any) -> None:
    ds = FakeDatasette({})
    runtime._datasette = ds
    random.seed(1234)  # every restore starts from the same memory, so the same random state
    same = random.getstate()
    expected = random.random()
    random.setstate(same)

    runtime.resume()

    assert random.random() != expected
    assert ds._secret != "s" * 64 and len(ds._secret) == 64
    assert ds._root_token != "r" * 64
    assert runtime._app == (ds._secret, 1), "the ASGI app is made again with the new secret"
