"""Settings come from the environment through typed helpers; a bare checkout needs none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from gallery.settings import env_bool, env_int, env_list, env_port, env_url

REPO = Path(__file__).resolve().parents[2]
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'broker': s.CELERY_BROKER_URL, 'db': s.DATABASES['default']['ENGINE'], "
    "'storage': type(__import__('gallery.storage').storage.get_storage()).__name__, "
    "'hosts': s.ALLOWED_HOSTS, 'email': s.EMAIL_BACKEND, 'from': s.DEFAULT_FROM_EMAIL, 'debug': s.DEBUG, 'max': s.UPLOAD_MAX_BYTES, 'options': "
    "s.__dict__['_wrapped'].__dict__.get('CELERY_BROKER_TRANSPORT_OPTIONS')}))"
)


def run_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with only ``env`` (and a data folder in tmp_path)."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "gallery.settings",
        "GLASSHOUSE_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bare_checkout_runs_on_embedded_defaults(tmp_path):
    result = run_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    data = tmp_path / "data"
    assert shown["broker"] == "filesystem://"
    assert shown["options"]["data_folder_in"] == str(data / "broker" / "queue")
    assert shown["options"]["store_processed"] is False
    assert shown["db"] == "django.db.backends.sqlite3"
    assert shown["storage"] == "LocalStorage"
    assert shown["debug"] is False
    assert shown["max"] == 100 * 1024 * 1024
    assert shown["hosts"][:3] == ["127.0.0.1", "localhost", ".localhost"]
    assert shown["email"] == "gallery.mail.ReadableConsoleBackend"
    assert (data / "secret_key").read_text().strip()
    assert shown["options"]["control_folder"] == str(data / "broker" / "control")
    assert (data / "broker" / "processed").is_dir()
    assert (data / "broker" / "control").is_dir()


def test_production_variables_choose_the_real_servers(tmp_path):
    result = run_settings(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/x",
        S3_BUCKET="bundles",
        S3_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="k",
        AWS_SECRET_ACCESS_KEY="s",
        CONTENT_DOMAIN="content.example",
        APP_HOSTS="glasshouse.example, www.glasshouse.example",
        APP_URL="https://glasshouse.example",
        EMAIL_HOST="smtp.example",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["broker"] == "redis://127.0.0.1:6379/0"
    assert shown["db"] == "django.db.backends.postgresql"
    assert shown["storage"] == "S3Storage"
    assert shown["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert shown["from"] == "Glasshouse <noreply@glasshouse.example>"
    assert {".content.example", "glasshouse.example", "www.glasshouse.example"} <= set(shown["hosts"])


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"UPLOAD_MAX_BYTES": str(2 * 1024**3)}, "UPLOAD_MAX_BYTES"),
        ({"UPLOAD_MAX_BYTES": "a lot"}, "UPLOAD_MAX_BYTES"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"PORT": "eighty"}, "PORT"),
        ({"CONTENT_PORT": "70000"}, "CONTENT_PORT"),
        ({"BUILD_SOFT_TIME_LIMIT": "900"}, "BUILD_HARD_TIME_LIMIT"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"APP_URL": "glasshouse.example"}, "APP_URL"),
        ({"CONTENT_SCHEME": "ftp"}, "CONTENT_SCHEME"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
        ({"EMAIL_USE_SSL": "true", "EMAIL_USE_TLS": "true"}, "EMAIL_USE_TLS"),
        ({"PREVIEW_LIFETIME": "30"}, "PREVIEW_LIFETIME"),
        ({"RATELIMIT_IP_META_KEY": "X-Real-IP"}, "RATELIMIT_IP_META_KEY"),
        ({"UPLOAD_RATE_LIMIT": "ten an hour"}, "UPLOAD_RATE_LIMIT"),
    ],
)
def test_a_bad_value_names_the_variable(tmp_path, env, variable):
    result = run_settings(tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("helper", "value"),
    [(env_bool, "perhaps"), (env_int, "1.5"), (env_port, "0"), (env_url, "ftp://x")],
)
def test_each_helper_raises_improperly_configured_naming_the_variable(monkeypatch, helper, value):
    monkeypatch.setenv("GH_TEST_VALUE", value)
    with pytest.raises(ImproperlyConfigured, match="GH_TEST_VALUE"):
        helper("GH_TEST_VALUE", "http://x" if helper is env_url else 1)


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (env_bool, "Yes", True),
        (env_bool, "0", False),
        (env_int, " 42 ", 42),
        (env_port, "", ""),
        (env_list, "a, b,,c", ["a", "b", "c"]),
        (env_url, "https://g.example/", "https://g.example"),
    ],
)
def test_each_helper_parses_good_values(monkeypatch, helper, value, expected):
    monkeypatch.setenv("GH_TEST_VALUE", value)
    default = {
        env_bool: False,
        env_int: 0,
        env_port: "1",
        env_list: [],
        env_url: "http://x",
    }[helper]
    assert helper("GH_TEST_VALUE", default) == expected
