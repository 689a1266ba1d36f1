"""``deploy/compose.yaml`` and ``deploy/Dockerfile``: the stack they describe, read as YAML.

Docker does not run on the project's machines, so the stack is never started here. These
tests read the file: every part of the production shape is there, the app's environment is
one the settings accept, the worker stops warm, nginx gets the two configs of ``deploy/nginx/``;
and ``docker compose config`` validates it where the compose plugin is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from tests.support.fresh_process import run_python

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_stack_has_every_part_of_the_production_shape(stack):
    assert {"postgres", "redis", "minio", "web", "worker", "beat", "nginx"} <= stack["services"].keys()


@pytest.mark.parametrize("name", ["web", "worker", "beat", "migrate"])
def test_app_services_share_one_image_and_environment(stack, name):
    service = stack["services"][name]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert service["environment"] == stack["services"]["web"]["environment"]


def test_the_apps_environment_is_accepted_by_the_settings(stack, tmp_path):
    env = {key: str(value) for key, value in stack["services"]["web"]["environment"].items()}
    env.pop("GLASSHOUSE_DATA_DIR")  # the container's; here a folder in tmp_path
    show = (
        "import django; django.setup(); from django.conf import settings as s; print(s.CELERY_BROKER_URL, s.LOG_FORMAT)"
    )
    result = run_python(tmp_path, ["-c", show], **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://redis:6379/0", "json"]


def test_the_worker_consumes_the_build_queue_and_stops_warm(stack):
    worker = stack["services"]["worker"]
    command = worker["command"]
    assert command[command.index("-Q") + 1] == "celery"
    assert command[command.index("-O") + 1] == "fair"
    assert worker["stop_signal"] == "SIGTERM"
    assert int(worker["stop_grace_period"].rstrip("s")) > settings.BUILD_HARD_TIME_LIMIT
    assert worker["healthcheck"]["test"] == ["CMD", "python", "manage.py", "worker_ready"]


def test_the_web_service_is_checked_through_healthz(stack):
    assert "/healthz" in " ".join(stack["services"]["web"]["healthcheck"]["test"])


def test_nginx_serves_the_app_and_content_configs_of_deploy_nginx(stack):
    mounts = [volume.split(":")[0] for volume in stack["services"]["nginx"]["volumes"]]
    assert "./nginx/app.conf" in mounts and "./nginx/content.conf" in mounts


def test_the_image_fetches_pyodide_where_the_settings_look():
    # fetch-pyodide.sh installs the version builder/pyodide.py pins into PYODIDE_RUNTIME_DIR, which
    # the settings read: the ENV must come before the RUN, and the RUN must not set another folder.
    dockerfile = DOCKERFILE.read_text()
    env = re.search(r"^ENV PYODIDE_RUNTIME_DIR=(/opt/glasshouse/\S+)", dockerfile, re.MULTILINE)
    fetch = re.search(r"^RUN (.*)bash deploy/fetch-pyodide\.sh", dockerfile, re.MULTILINE)
    assert env and fetch and env.start() < fetch.start(), "ENV PYODIDE_RUNTIME_DIR=... before RUN ... fetch-pyodide.sh"
    assert "PYODIDE_RUNTIME_DIR" not in fetch.group(1)
    assert re.search(r"^USER glasshouse$", dockerfile, re.MULTILINE)


def _compose_command() -> list[str] | None:
    """``docker compose`` (the v2 plugin) if it works here, else Debian's ``docker-compose`` (v1), else None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file():
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)")
    # `config` only reads and validates the file against Compose's schema; it needs no daemon.
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
