"""The settings only read the environment; each process prepares itself when Django starts
(``gallery.project.startup``, run by ``GalleryConfig.ready``): data folders, the generated secret
key, error reporting. Each test runs a fresh interpreter, as a process starts."""

from __future__ import annotations

import json
import stat

from tests.support import REPO_ROOT
from tests.support.fresh_process import run_python

#: A DSN whose port nobody answers on: valid, so the settings accept it; nothing is sent before
#: the process ends (no error is logged).
DSN = "http://publickey@127.0.0.1:9/42"


def test_importing_the_settings_creates_no_folder_or_file_and_starts_no_reporting(tmp_path):
    show = (
        "import json, sys; import gallery.project.settings as s; "
        "sentry = sys.modules.get('sentry_sdk'); "
        "print(json.dumps({'secret_key': s.SECRET_KEY, 'sentry': bool(sentry and sentry.get_client().is_active())}))"
    )
    result = run_python(tmp_path, ["-c", show], SENTRY_DSN=DSN)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"secret_key": "", "sentry": False}
    assert not (tmp_path / "data").exists()


def test_the_default_data_folder_is_var_in_the_repository(tmp_path):
    # An empty GLASSHOUSE_DATA_DIR counts as unset. Only the settings are imported: nothing is created.
    show = "import gallery.project.settings as s; print(s.DATA_DIR, s.PYODIDE_RUNTIME_DIR.parent)"
    result = run_python(tmp_path, ["-c", show], GLASSHOUSE_DATA_DIR="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(REPO_ROOT / "var"), str(REPO_ROOT / "var" / "runtime")]


def test_starting_django_creates_the_data_folders(tmp_path):
    result = run_python(tmp_path, ["-c", "import django; django.setup()"])
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    for folder in ("broker/queue", "broker/processed", "broker/control", "tmp", "static"):
        assert (data / folder).is_dir(), folder


SHOW_KEY = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def test_processes_sharing_a_data_folder_take_the_same_generated_secret_key(tmp_path):
    first = run_python(tmp_path, ["-c", SHOW_KEY])
    second = run_python(tmp_path, ["-c", SHOW_KEY])
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    key_file = tmp_path / "data" / "secret_key"
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout == key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_secret_key_from_the_environment_wins_and_no_key_file_is_written(tmp_path):
    key = "k" * 60
    result = run_python(tmp_path, ["-c", SHOW_KEY], SECRET_KEY=key)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key
    assert not (tmp_path / "data" / "secret_key").exists()


def test_an_empty_key_file_stops_start_up_saying_to_delete_it(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret_key").write_text("\n")
    result = run_python(tmp_path, ["-c", SHOW_KEY])
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and "secret_key is empty: delete it to generate a new SECRET_KEY" in last
