"""Loopback addresses for tests: a stub HTTP server in a thread, and a port where nothing listens.

``LoopbackServer`` is the one stub server of the suite (the ``loopback_server`` fixture of
``tests.plugins.servers`` starts and stops it): a test writes only the request handler that
plays the other side (Sentry's ingest endpoint, a failing S3, a third-party article page...).
``free_port`` gives a port for a server process a test starts, or an address where nothing
listens, which is how a test makes a store or a broker that is down.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The loopback address every test server binds to.
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Either for a server the test starts there next, or as an address where nothing listens
    (connections are refused at once): a store, broker or database that is down.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) that answers with ``handler``, in a daemon thread.

    Starts on construction. ``handler`` is a ``BaseHTTPRequestHandler`` subclass written by the test
    (``do_GET``, ``do_POST``...); its request lines are not logged (``log_message`` is silenced), so a
    test's output shows only what the test prints. ``close()`` stops the thread and frees the port.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        quiet = type(handler.__name__, (handler,), {"log_message": _no_log})
        self.server = ThreadingHTTPServer((HOST, 0), quiet)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name=f"loopback-{handler.__name__}", daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self.server.server_address[1]

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, for URLs a test writes itself (a DSN with credentials, a Host)."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://{self.address}"

    def close(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(5)
        self.server.server_close()


def _no_log(handler: BaseHTTPRequestHandler, format: str, *args: object) -> None:
    """``log_message`` of a stub's handler: tests have no use for its access log on stderr."""
