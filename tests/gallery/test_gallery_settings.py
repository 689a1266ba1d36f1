"""Settings come from the environment through typed helpers; a bare checkout needs none."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from gallery.project.env import env_bool, env_int, env_list, env_port, env_url
from gallery.sites import registrable_domain
from tests.support.fresh_process import run_python

SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'broker': s.CELERY_BROKER_URL, 'db': s.DATABASES['default']['ENGINE'], "
    "'storage': type(__import__('gallery.storage').storage.get_storage()).__name__, "
    "'hosts': s.ALLOWED_HOSTS, 'email': s.EMAIL_BACKEND, 'from': s.DEFAULT_FROM_EMAIL, 'debug': s.DEBUG, 'max': s.UPLOAD_MAX_BYTES, 'options': "
    "s.__dict__['_wrapped'].__dict__.get('CELERY_BROKER_TRANSPORT_OPTIONS')}))"
)


def run_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with only ``env`` (and a data folder in tmp_path)."""
    return run_python(tmp_path, ["-c", SHOW], **env)


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
        ({"CONTENT_ACCEL_REDIRECT": "/_s3"}, "CONTENT_ACCEL_REDIRECT"),
        ({"CONTENT_ACCEL_REDIRECT": "http://s3.example/"}, "CONTENT_ACCEL_REDIRECT"),
        # The bare content domain and its subdomains answer only for galleries (404 without one).
        ({"APP_URL": "http://localhost:8000"}, "The app host localhost (APP_URL or APP_HOSTS) is CONTENT_DOMAIN"),
        ({"APP_URL": "http://glasshouse.localhost:8000"}, "is under CONTENT_DOMAIN (localhost)"),
        ({"APP_HOSTS": "LOCALHOST"}, "The app host LOCALHOST (APP_URL or APP_HOSTS) is CONTENT_DOMAIN itself"),
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


# --- The content domain is a site of its own (gallery.sites) ---------------------------------


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("app.example.com", "example.com"),
        ("x.galleries.example.com", "example.com"),
        ("glasshouse.org", "glasshouse.org"),
        ("x.glasshouse-content.org", "glasshouse-content.org"),
        ("shop.example.co.uk", "example.co.uk"),
        ("x.github.io", "x.github.io"),  # a private suffix of the list
        ("X.Example.COM.", "example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("localhost", "localhost"),
        ("x.localhost", "x.localhost"),  # no listed suffix: the default rule "*"
        ("glasshouse.example", "glasshouse.example"),
    ],
)
def test_the_registrable_domain_follows_the_public_suffix_list(host, site):
    assert registrable_domain(host) == site


@pytest.mark.parametrize(
    "env",
    [
        {},  # a bare checkout: app 127.0.0.1, galleries *.localhost
        {"APP_URL": "http://glasshouse.localhost:8080", "CONTENT_DOMAIN": "glasshouse-content.localhost"},  # compose
        {"APP_URL": "https://glasshouse.org", "CONTENT_DOMAIN": "glasshouse-content.org"},
        {"APP_URL": "https://app.example.com", "CONTENT_DOMAIN": "example-content.com"},
    ],
)
def test_a_content_domain_that_is_a_site_of_its_own_is_accepted(tmp_path, env):
    result = run_settings(tmp_path, **env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"APP_URL": "https://app.example.com", "CONTENT_DOMAIN": "galleries.example.com"},
        {"APP_URL": "https://example.com", "CONTENT_DOMAIN": "example.com"},
        {"APP_URL": "https://glasshouse.org", "CONTENT_DOMAIN": "content.glasshouse.org"},
        {"APP_URL": "https://glasshouse.co.uk", "CONTENT_DOMAIN": "galleries.glasshouse.co.uk"},
        # Any host the app answers on counts, not only APP_URL's.
        {
            "APP_URL": "https://glasshouse.org",
            "APP_HOSTS": "www.example.com",
            "CONTENT_DOMAIN": "galleries.example.com",
        },
    ],
)
def test_a_content_domain_on_the_apps_registrable_domain_is_refused(tmp_path, env):
    result = run_settings(tmp_path, **env)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in message
    assert "CONTENT_DOMAIN" in message and "same registrable domain" in message


# --- Production: check --deploy is clean, HSTS, secure host-only cookies ------------------------

#: What production sets (README, "Security model"); ``manage.py check --deploy`` is clean with these.
PRODUCTION_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "APP_URL": "https://glasshouse.org",
    "CONTENT_DOMAIN": "glasshouse-content.org",
    "CONTENT_SCHEME": "https",
    "CONTENT_PORT": "",
}


def test_check_deploy_is_clean_with_the_production_variables(tmp_path):
    result = run_python(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_sends_hsts_secure_cookies_and_redirects_to_https(tmp_path):
    show = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'hsts': s.SECURE_HSTS_SECONDS, 'sub': s.SECURE_HSTS_INCLUDE_SUBDOMAINS, 'redirect': s.SECURE_SSL_REDIRECT, "
        "'session': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE, 'domain': s.SESSION_COOKIE_DOMAIN, "
        "'frames': s.SECURE_CSP['frame-src']}))"
    )
    result = run_python(tmp_path, ["-c", show], **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "hsts": 365 * 24 * 3600,
        "sub": True,
        "redirect": True,
        "session": True,
        "csrf": True,
        "domain": None,
        "frames": ["https://*.glasshouse-content.org"],
    }
