"""Log lines that say which request or build they belong to.

Every web log line carries ``request_id`` and every worker log line written during a build
carries ``build_id`` (``-`` outside one). The ids live in context variables: the web process
sets the request's in ``RequestIdMiddleware``; the worker sets the build's from Celery's
``task_prerun``/``task_postrun`` signals (``worker_shell.celery``). ``ContextFilter``, on the
handlers, copies them onto each record.

``LOG_FORMAT`` chooses the line format: ``text`` (default; what people read in a terminal and
what the test fixtures match) or ``json``, one JSON object a line for a log collector
(journald, Loki, CloudWatch...), with ``time``, ``level``, ``logger``, ``message``,
``request_id``, ``build_id`` and the traceback as ``exc_info`` when there is one.

This module imports neither Django's settings nor Celery, so ``deploy/gunicorn.conf.py``
can use it before Django starts.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

#: The current request's id (web process), or ``None`` outside a request.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The id of the build this process is running (worker), or ``None`` outside a build.
build_id_var: ContextVar[str | None] = ContextVar("build_id", default=None)

#: Request header (and response header) carrying the request id; nginx sets it to ``$request_id``.
REQUEST_ID_HEADER = "X-Request-ID"
#: What an incoming request id may look like: nginx's 32 hex digits, a UUID, or any short token.
#: Anything else (too long, spaces, quotes) is replaced by a fresh id rather than logged.
_GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: Formats by ``LOG_FORMAT``; both end with the message, so a tool matching line ends still can.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s build_id=%(build_id)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(request_id)s %(build_id)s %(message)s"
LOG_FORMATS = ("text", "json")


class ContextFilter(logging.Filter):
    """Adds ``record.request_id`` and ``record.build_id`` (``"-"`` when unset); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # gunicorn's access line is written after the request left Django: its atoms hold
            # the response's X-Request-ID header.
            atoms = record.args if isinstance(record.args, Mapping) else {}
            record.request_id = atoms.get("{x-request-id}o") or request_id_var.get() or "-"
        if not hasattr(record, "build_id"):
            record.build_id = build_id_var.get() or "-"
        return True


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC offset), ``level``, ``logger``, ``pid``,
    ``request_id``, ``build_id``, ``message``, and ``exc_info`` (the traceback) when present."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", JSON_FIELDS)
        kwargs.setdefault(
            "rename_fields",
            {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        )
        kwargs.setdefault("datefmt", "%Y-%m-%dT%H:%M:%S%z")
        super().__init__(*args, **kwargs)


#: A management link's path, ``/manage/<gallery-id>/<token>/``: group 1 is all but the token.
_MANAGEMENT_LINK = re.compile(r"(/manage/[^/\s]+/)[^/\s?#\"']+")
#: What stands for a management token in a log line.
REDACTED_TOKEN = "<token>"


def redact_management_tokens(text: str) -> str:
    """``text`` with the token of every management link path replaced by ``REDACTED_TOKEN``."""
    return _MANAGEMENT_LINK.sub(lambda match: match[1] + REDACTED_TOKEN, text)


class ManagementTokenFilter(logging.Filter):
    """Redacts management tokens (``redact_management_tokens``) in a record's message; never drops a record.

    A management token lets its holder change or delete an anonymous gallery, and Django's own
    lines name the request path (``Not Found: /manage/<id>/<token>/`` for a stale link,
    ``Method Not Allowed`` for a HEAD, ``Internal Server Error`` with a traceback).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_management_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def new_request_id() -> str:
    """A fresh request id: 32 lowercase hex digits, like nginx's ``$request_id``."""
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str:
    """``value`` if it is a well-formed request id (``[A-Za-z0-9._:-]``, 1-128 characters), else a new one."""
    if value and _GOOD_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Gives each request an id: the ``X-Request-ID`` header nginx sets, or a new one.

    The id is in ``request.request_id``, on every log line written while the request runs, and
    in the response's ``X-Request-ID`` header (which gunicorn's access log records). First in
    ``MIDDLEWARE``, so gallery content origins get one too.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` dict for ``log_format`` (``"text"`` or ``"json"``) and the ``gallery`` loggers' ``level``.

    One stream handler (stderr) with ``ContextFilter`` and ``ManagementTokenFilter``; the root
    logger at WARNING, ``gallery`` and ``worker_shell`` at ``level``. Raises ``ValueError`` for
    another format.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = {"()": JsonLineFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}, "management_tokens": {"()": ManagementTokenFilter}},
        "formatters": {"line": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["context", "management_tokens"],
                "formatter": "line",
            },
        },
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "gallery": {"level": level, "propagate": True},
            "worker_shell": {"level": level, "propagate": True},
        },
    }


def use_context_on(logger: logging.Logger, log_format: str) -> None:
    """Add ``ContextFilter`` to each of ``logger``'s handlers, and the JSON formatter when ``log_format`` is json.

    For handlers someone else configured (Celery's worker sets up the root logger's with
    ``CELERY_WORKER_LOG_FORMAT``, which names ``%(build_id)s``: the filter must be on them).
    """
    for handler in logger.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(JsonLineFormatter())
