"""gunicorn settings for Glasshouse's web process (app origin and, in development, content origins).

Binds loopback only, on ``$PORT`` (default 8000): nginx sits in front in production
(deploy/nginx/app.conf). Chromium resolves ``<id>.localhost`` to loopback and
reaches the 127.0.0.1 socket (verified with Chromium 156); ``[::1]`` is bound as well
when the machine has IPv6 loopback, for clients that try ::1 first without falling back.
``BIND`` (comma-separated ``host:port``) replaces that, e.g. ``0.0.0.0:8000`` in a container.

Environment: ``WEB_CONCURRENCY`` (processes; 2 per CPU), ``GUNICORN_THREADS`` (4 per process),
``GUNICORN_MAX_REQUESTS`` (1000, with 10 % jitter; 0 off), ``GUNICORN_TIMEOUT`` (300 s),
``GUNICORN_GRACEFUL_TIMEOUT`` (30 s), ``FORWARDED_ALLOW_IPS`` (loopback), ``GUNICORN_LOG_LEVEL``
(info), ``LOG_FORMAT`` (text or json).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


_port = int(os.environ.get("PORT") or 8000)
bind = [f"127.0.0.1:{_port}"]
if _has_ipv6_loopback():
    bind.append(f"[::1]:{_port}")
if os.environ.get("BIND", "").strip():
    bind = [item.strip() for item in os.environ["BIND"].split(",") if item.strip()]


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, which containers and cgroups set), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def env_int(name: str, default: int) -> int:
    """``$name`` as a positive integer, or ``default`` when unset or empty; anything else stops start-up."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a positive integer, not {value!r}")
    return int(value)


# Threads, not processes, serve most concurrency: requests mostly wait on disk, the database or
# storage, and in production nginx serves every bundle byte (X-Accel-Redirect). Two processes
# per CPU keep the CPUs busy while a thread holds the GIL; WEB_CONCURRENCY (the name Heroku and
# others use) overrides it.
worker_class = "gthread"
workers = env_int("WEB_CONCURRENCY", 2 * cpu_count())
threads = env_int("GUNICORN_THREADS", 4)

# Recycle each worker after about this many requests, so a slow leak never grows without bound;
# the jitter spreads the restarts, so workers do not all restart at once. 0 turns it off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or 1000)
max_requests_jitter = max(max_requests // 10, 0)

# Behind nginx (proxy_request_buffering on) an upload reaches gunicorn only once nginx holds
# all of it, so reading it takes seconds; checking and storing a 100 MB file may take longer.
# Without nginx a slow client's upload holds a thread for minutes. Django spools it to disk as
# it arrives (FILE_UPLOAD_MAX_MEMORY_SIZE = 0, gallery/uploads.py). gthread workers keep
# heartbeating while a thread reads a long request, and the timeout also bounds a stuck worker.
timeout = env_int("GUNICORN_TIMEOUT", 300)
# On SIGTERM (systemd stop, a deploy) workers finish the requests they have for this long.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5

# nginx on the same machine (or FORWARDED_ALLOW_IPS: the proxies' addresses, comma-separated)
# may set X-Forwarded-Proto/-For; gunicorn ignores them from anyone else.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs to stdout/stderr: honcho (make run) or journald (systemd) collects them. Each access line
# names the request id (the X-Request-ID response header, gallery.logs.RequestIdMiddleware).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s "%(a)s"'
# gallery.logs is importable before Django starts (and before gunicorn changes to its chdir).
_root = str(Path(__file__).resolve().parent.parent)
if _root not in sys.path:
    sys.path.insert(0, _root)
# Every access and error line with management-link tokens redacted (/manage/<gallery-id>/[redacted]/).
logger_class = "gallery.gunicorn_logger.GunicornLogger"
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    # One JSON object per line, as the app's (gallery.logs): the access line is the message.
    _handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "gallery.logs.JsonLineFormatter"}},
        "filters": {"context": {"()": "gallery.logs.ContextFilter"}},
        "handlers": {"json": {**_handler, "filters": ["context"]}},
        # gunicorn merges this over its own defaults, whose root logger names their handler.
        "root": {"handlers": ["json"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["json"], "level": loglevel.upper(), "propagate": False},
            "gunicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }

# No `gunicornc` control socket: its default path ($HOME/.gunicorn/gunicorn.ctl) is
# shared by every gunicorn of the user, so two instances on one machine would clash.
control_socket_disable = True

# Load the app in each worker, not the master: a broken settings module then
# fails loudly per worker, and `kill -HUP` reloads code.
preload_app = False
