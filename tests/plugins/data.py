"""Files the tests read and write: the repository, the team's sample databases, a fresh data folder,
small SQLite files, the plugin checks' database and the hostile corpus."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO_ROOT


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (where ``manage.py`` is)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``: sample SQLite databases shared by the team (chinook, fixtures).

    Fails (never skips) when the folder is missing: CI clones the repo with
    ``shared/`` beside it, so a missing folder is a broken checkout.
    """
    path = (REPO_ROOT.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} is missing: check out shared/ beside the repository")
    return path


@pytest.fixture
def glasshouse_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    """A fresh data folder for this test, used by the test process and by workers it starts.

    Sets ``GLASSHOUSE_DATA_DIR`` in the environment (``celery_worker_factory``
    passes it on) and overrides the settings that ``gallery.project.settings`` derived from
    it at import: ``DATA_DIR``, ``LOCAL_STORAGE_ROOT`` (local bundle store; the
    cached store is rebuilt through ``setting_changed``) and ``FILE_UPLOAD_TEMP_DIR``.
    ``PYODIDE_RUNTIME_DIR`` and ``WHEEL_CACHE_DIR`` keep pointing at the
    repository's shared copies (``make runtime`` fills the first), so no test
    downloads them again.
    """
    data_dir = tmp_path / "data"
    (data_dir / "tmp").mkdir(parents=True)
    monkeypatch.setenv("GLASSHOUSE_DATA_DIR", str(data_dir))
    settings.DATA_DIR = data_dir
    settings.LOCAL_STORAGE_ROOT = data_dir / "storage"
    settings.FILE_UPLOAD_TEMP_DIR = str(data_dir / "tmp")
    return data_dir


@pytest.fixture
def make_sqlite(tmp_path: Path) -> Callable[[str], Path]:
    """``make_sqlite(name="chinook.db") -> Path``: a small valid SQLite database (one table, two rows) in ``tmp_path``."""

    def make(name: str = "chinook.db") -> Path:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT)")
        conn.executemany(
            "INSERT INTO album (title) VALUES (?)", [("Blue",), ("Kind of Blue",)]
        )
        conn.commit()
        conn.close()
        return path

    return make


@pytest.fixture(scope="session")
def plugin_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plugins.db`` from ``plugin_data.make_plugin_database``, written once per session.

    One path for the catalog's Node checks and the browser checks, so both ask
    ``prebuilt_bundle`` for the same combinations and share each build.
    """
    from tests.support.plugin_data import make_plugin_database

    return make_plugin_database(tmp_path_factory.mktemp("plugin-database") / "plugins.db")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The hostile and broken database corpus (``tests/corpus/make_corpus.py``), written once per session.

    ``{case name: path}``; ``corpus.make_corpus.CASES`` says what Glasshouse must do with each.
    """
    from tests.corpus.make_corpus import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus"))
