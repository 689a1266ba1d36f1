"""``python manage.py worker_ready [--name celery@HOST] [--timeout 5]``: is this build worker ready?

A readiness probe for a Celery worker (systemd ``ExecStartPost``, a container health check,
a deploy script that waits before draining the old worker). The worker is ready when it
answers a remote-control ping through the broker and consumes the build queue
(``CELERY_TASK_DEFAULT_QUEUE``, Celery's ``celery`` unless set). Exit status 0 and
``ready: <name> consumes <queues>``; else exit status 1 with the reason on stderr.
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.services.queue import BROKER_ERRORS, make_app


class Command(BaseCommand):
    help = "Exit 0 if the named Celery worker answers a ping and consumes the build queue, else 1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name",
            default=f"celery@{socket.gethostname()}",
            help="The worker's node name (celery worker --hostname); default celery@<this host>.",
        )
        parser.add_argument("--timeout", type=float, default=5.0, help="Seconds to wait for the answer (default 5).")

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        timeout: float = options["timeout"]
        app = make_app()
        queue = app.conf.task_default_queue
        try:
            answers = app.control.ping(destination=[name], timeout=timeout)
            if not any(name in answer for answer in answers):
                raise CommandError(f"worker {name} did not answer a ping within {timeout:g} s: is it running?")
            consumed = app.control.inspect(destination=[name], timeout=timeout).active_queues() or {}
        except BROKER_ERRORS as exc:
            raise CommandError(f"the broker could not be reached ({exc}); check REDIS_URL") from exc
        finally:
            app.close()
        queues = sorted(q["name"] for q in consumed.get(name, []))
        if queue not in queues:
            raise CommandError(
                f"worker {name} answers but does not consume the build queue {queue!r} "
                f"(it consumes {', '.join(queues) or 'nothing'}): start it with -Q {queue}"
            )
        self.stdout.write(f"ready: {name} consumes {', '.join(queues)}")
