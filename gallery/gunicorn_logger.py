"""gunicorn's logger class for deploy/gunicorn.conf.py (``logger_class``): every line redacted.

Apart from ``gallery.logs`` so that only the web process imports gunicorn. Usable before Django starts.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from gallery.logs import redact_handler


class GunicornLogger(Logger):
    """gunicorn's logger (``logger_class`` in deploy/gunicorn.conf.py) with every access and error line redacted.

    The access line keeps ``access_log_format`` (the request line, with ``/manage/<gallery-id>/[redacted]/``);
    gunicorn's error lines ("Error handling request /manage/...") are redacted too. With
    ``LOG_FORMAT=json`` the handlers come from ``logconfig_dict`` with ``JsonLineFormatter``, which
    redacts already.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # setup() runs again on a configuration reload (SIGHUP), with new handlers.
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                redact_handler(handler)
