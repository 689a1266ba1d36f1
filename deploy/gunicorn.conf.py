"""gunicorn settings for Glasshouse's web process (app origin and, in development, content origins).

Binds loopback only, on ``$PORT`` (default 8000): nginx sits in front in production
(deploy/nginx.conf.example). Chromium resolves ``<id>.localhost`` to loopback and
reaches the 127.0.0.1 socket (verified with Chromium 156); ``[::1]`` is bound as well
when the machine has IPv6 loopback, for clients that try ::1 first without falling back.
"""

from __future__ import annotations

import os
import socket


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

# Threads, not processes, serve most concurrency: requests mostly wait on disk,
# the database or storage. 2 workers x 4 threads suits the 2-core machines.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)

# Behind nginx (proxy_request_buffering on) an upload reaches gunicorn only once nginx holds
# all of it, so reading it takes seconds; checking and storing a 100 MB file may take longer.
# Without nginx a slow client's upload holds a thread for minutes. Django spools it to disk as
# it arrives (FILE_UPLOAD_MAX_MEMORY_SIZE = 0, gallery/uploads.py). gthread workers keep
# heartbeating while a thread reads a long request, and the timeout also bounds a stuck worker.
timeout = 300
graceful_timeout = 30
keepalive = 5

# Logs to stdout/stderr: honcho (make run) or journald (systemd) collects them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# No `gunicornc` control socket: its default path ($HOME/.gunicorn/gunicorn.ctl) is
# shared by every gunicorn of the user, so two instances on one machine would clash.
control_socket_disable = True

# Load the app in each worker, not the master: a broken settings module then
# fails loudly per worker, and `kill -HUP` reloads code.
preload_app = False
