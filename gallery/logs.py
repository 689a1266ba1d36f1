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

No line names a secret: both formats, gunicorn's access and error lines
(``gallery.gunicorn_logger``) and what goes to Sentry (``redact_sentry_event``) pass through
``redact_secrets``, which replaces the token of every management link
(``/manage/<gallery-id>/<token>/``) with ``[redacted]``.
deploy/nginx/app.conf does the same for nginx's access log.

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

#: One path segment as it may appear in a log line: URL-safe characters or percent-escapes,
#: except an escaped slash (``%2F``), which ends the segment as ``/`` does. Quotes, spaces and
#: backslashes end it too, so redacting inside a JSON line keeps the line valid JSON.
_SEGMENT = r"(?:[A-Za-z0-9_.~-]|%(?!2[Ff])[0-9A-Fa-f]{2})"
_SLASH = r"(?:/|%2[Ff])"
#: The token of a management link (gallery/urls.py, ``manage-link``): the segment after
#: ``/manage/<gallery-id>/``, also percent-encoded (``?next=%2Fmanage%2F...``) and in any case.
#: deploy/nginx/app.conf's ``map`` uses the same expression.
MANAGEMENT_TOKEN_RE = re.compile(rf"({_SLASH}manage{_SLASH}{_SEGMENT}*{_SLASH}){_SEGMENT}+", re.IGNORECASE)
#: What a redacted token reads as.
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """``text`` with the token of each management link in it replaced by ``[redacted]``.

    ``"GET /manage/abcdefghijkl/Zq3...x/ HTTP/1.1"`` -> ``"GET /manage/abcdefghijkl/[redacted]/ HTTP/1.1"``;
    ``"?next=%2Fmanage%2Fabc%2FZq3"`` -> ``"?next=%2Fmanage%2Fabc%2F[redacted]"``. Other text is unchanged.
    """
    return MANAGEMENT_TOKEN_RE.sub(rf"\1{REDACTED}", text)


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


class _Redacting(logging.Formatter):
    """A formatter whose finished line (message, extra fields, traceback) passes through ``redact_secrets``."""

    #: Marks formatters whose lines are already redacted (``redact_handler`` wraps the others).
    redacts_secrets = True

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


class TextLineFormatter(_Redacting):
    """``TEXT_FORMAT`` lines (``LOG_FORMAT=text``), secrets redacted."""

    def __init__(self, fmt: str = TEXT_FORMAT, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)


class RedactedFormatter(_Redacting):
    """Another formatter's lines, secrets redacted: for handlers someone else set up (gunicorn's own)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(self.inner.format(record))


class JsonLineFormatter(_Redacting, JsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC offset), ``level``, ``logger``, ``pid``,
    ``request_id``, ``build_id``, ``message``, and ``exc_info`` (the traceback) when present;
    secrets redacted in the whole line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", JSON_FIELDS)
        kwargs.setdefault(
            "rename_fields",
            {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        )
        kwargs.setdefault("datefmt", "%Y-%m-%dT%H:%M:%S%z")
        super().__init__(*args, **kwargs)


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

    One stream handler (stderr) with ``ContextFilter`` and a redacting formatter; the root logger
    at WARNING, ``gallery`` and ``worker_shell`` at ``level``. Django's own ``django`` and
    ``django.server`` loggers write through that handler too, instead of the handlers Django's
    default configuration gives them (which would print request paths unredacted). Raises
    ``ValueError`` for another format.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    formatter: dict[str, Any] = {"()": JsonLineFormatter if log_format == "json" else TextLineFormatter}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"line": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": "line"},
        },
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "gallery": {"level": level, "propagate": True},
            "worker_shell": {"level": level, "propagate": True},
            # Django's defaults: "django" prints to stderr under DEBUG and mails ADMINS (none are
            # set; errors go to Sentry), "django.server" (runserver) has a handler of its own.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


def use_context_on(logger: logging.Logger, log_format: str) -> None:
    """Add ``ContextFilter`` to each of ``logger``'s handlers, and the JSON formatter when ``log_format`` is json.

    For handlers someone else configured (Celery's worker sets up the root logger's with
    ``CELERY_WORKER_LOG_FORMAT``, which names ``%(build_id)s``: the filter must be on them).
    Their own text formatter is kept, its lines redacted (``redact_handler``).
    """
    for handler in logger.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(JsonLineFormatter())
        redact_handler(handler)


def redact_handler(handler: logging.Handler) -> None:
    """Make ``handler``'s lines pass through ``redact_secrets``, keeping its formatter's format (once only)."""
    if not getattr(handler.formatter, "redacts_secrets", False):
        handler.setFormatter(RedactedFormatter(handler.formatter))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def redact_sentry_event(event: Any, hint: Any = None) -> Any:
    """sentry-sdk's ``before_send*`` and ``before_breadcrumb``: ``event`` with every string redacted.

    An event carries the request's URL (Django integration), log messages and their arguments
    (logging integration) and breadcrumbs of earlier log lines, any of which may name a
    management link. ``redact_secrets`` is applied to every string in it; returns a new dict
    (lists for tuples). ``hint`` is unused.
    """
    return _redact_value(event)
