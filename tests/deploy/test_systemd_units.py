"""``deploy/systemd/``: the units verify, and say what production relies on.

``systemd-analyze verify`` checks each unit with ``/srv/glasshouse`` replaced by this checkout
(so the commands it names exist). The rest reads the units: which command each runs, that
they restart on failure and stop gracefully (the worker's warm shutdown outlasts a build), and
that the worker's hardening leaves the build's Node sandbox the namespaces it makes; running
``unshare`` under the same privilege limits (an unprivileged user, no new privileges, no
capabilities) shows the sandbox still gets its network namespace.
"""

from __future__ import annotations

import itertools
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from builder.compat import NETWORK_NAMESPACE_OPTIONS
from gallery.services.queue import make_app
from tests.support.fresh_process import run_python

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
SERVICES = ("glasshouse-web", "glasshouse-worker", "glasshouse-beat")


def read_unit(name: str) -> dict[str, list[str]]:
    """``{"Section.Key": [values in order]}`` of ``deploy/systemd/<name>``, continuation lines joined."""
    entries: dict[str, list[str]] = {}
    section = ""
    pending = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def value(unit: dict[str, list[str]], key: str) -> str:
    """The last value of ``key`` (as systemd reads a repeated setting)."""
    return unit[key][-1]


def test_the_units_verify_with_systemd_analyze(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the units are still read by the other tests")
    for path in [*UNITS.glob("*.service"), *UNITS.glob("*.target")]:
        text = path.read_text().replace("/srv/glasshouse", str(REPO))
        (tmp_path / path.name).write_text(text.replace("/etc/glasshouse/env", str(UNITS / "env.example")))
    result = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_as_its_own_user_from_the_env_file_and_restarts_on_failure(name):
    unit = read_unit(f"{name}.service")
    assert value(unit, "Service.User") == "glasshouse"
    assert value(unit, "Service.EnvironmentFile") == "/etc/glasshouse/env"
    assert value(unit, "Service.Restart") == "on-failure"
    assert value(unit, "Service.KillSignal") == "SIGTERM"
    assert value(unit, "Service.NoNewPrivileges") == "true"
    assert value(unit, "Service.CapabilityBoundingSet") == ""
    assert value(unit, "Service.ProtectSystem") == "strict"
    assert value(unit, "Service.StateDirectory") == "glasshouse"
    assert value(unit, "Install.WantedBy") == "glasshouse.target"
    assert f"{name}.service" in value(read_unit("glasshouse.target"), "Unit.Wants").split()


def test_the_web_unit_runs_gunicorn_from_the_deploy_config():
    command = shlex.split(value(read_unit("glasshouse-web.service"), "Service.ExecStart"))
    assert command[0].endswith("/gunicorn")
    assert command[1:] == ["-c", "deploy/gunicorn.conf.py", "gallery.project.wsgi:application"]


def test_the_worker_consumes_the_build_queue_one_build_per_cpu_fairly():
    command = shlex.split(value(read_unit("glasshouse-worker.service"), "Service.ExecStart"))
    assert command[0].endswith("/celery") and command[1:4] == ["-A", "worker_shell.celery:app", "worker"]
    options = dict(itertools.pairwise(command[4:]))
    assert options["-Q"] == make_app().conf.task_default_queue
    assert options["-O"] == "fair"
    # Celery's default concurrency is the CPU count: one build per core.
    assert not any(part.startswith(("--concurrency", "-c")) for part in command)


def test_the_worker_stops_warm_and_waits_longer_than_a_build_may_run():
    unit = read_unit("glasshouse-worker.service")
    # TERM only to Celery's main process: the pool's running builds (and their Node) go on.
    assert value(unit, "Service.KillMode") == "mixed"
    assert int(value(unit, "Service.TimeoutStopSec")) > settings.BUILD_HARD_TIME_LIMIT


def test_the_beat_unit_runs_celery_beat():
    command = shlex.split(value(read_unit("glasshouse-beat.service"), "Service.ExecStart"))
    assert command[1:] == ["-A", "worker_shell.celery:app", "beat", "--loglevel=INFO"]


def test_only_the_worker_may_make_the_namespaces_of_the_node_sandbox():
    assert NETWORK_NAMESPACE_OPTIONS[:1] == ("--user",) and "--net" in NETWORK_NAMESPACE_OPTIONS
    worker = read_unit("glasshouse-worker.service")
    assert set(value(worker, "Service.RestrictNamespaces").split()) == {"user", "net"}
    for name in ("glasshouse-web", "glasshouse-beat"):
        assert value(read_unit(f"{name}.service"), "Service.RestrictNamespaces") == "true"


def test_the_node_sandbox_gets_its_namespace_under_the_workers_privilege_limits():
    setpriv, unshare, node = shutil.which("setpriv"), shutil.which("unshare"), shutil.which("node")
    if not (setpriv and unshare and node):
        pytest.fail("setpriv, unshare (util-linux) and node are needed: make runtime")
    if subprocess.run(["id", "-u"], capture_output=True, text=True, check=True).stdout.strip() != "0":
        pytest.skip("becoming an unprivileged user with setpriv needs root")
    # As the unit runs it: a user without privileges, no_new_privs, an empty bounding set.
    limits = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs", "--bounding-set=-all"]
    result = subprocess.run(
        [*limits, unshare, *NETWORK_NAMESPACE_OPTIONS, "--", node, "-e",
         "console.log(Object.keys(require('os').networkInterfaces()).join(','))"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", "only a loopback that is down: no interface with an address"


def read_env_file(path: Path) -> dict[str, str]:
    """``VAR=value`` lines of an EnvironmentFile (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_check_deploy_is_clean_with_the_example_environment_file(tmp_path):
    env = read_env_file(UNITS / "env.example")
    env.pop("GLASSHOUSE_DATA_DIR")  # the machine's; here a folder in tmp_path
    result = run_python(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
