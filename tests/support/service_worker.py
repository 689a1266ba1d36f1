"""Helpers for browser tests that drive a gallery's Service Worker through Chrome DevTools Protocol."""

from __future__ import annotations

import threading
from typing import Any


def stop_service_worker(page: Any) -> None:
    """Stop every Service Worker of ``page``'s context (CDP ``ServiceWorker.stopAllWorkers``), as a browser stops an idle one.

    Fails (``AssertionError``) unless CDP reported a stopped worker within 500 ms.
    """
    cdp = page.context.new_cdp_session(page)
    stopped = threading.Event()
    cdp.on(
        "ServiceWorker.workerVersionUpdated",
        lambda event: stopped.set() if any(v["runningStatus"] == "stopped" for v in event["versions"]) else None,
    )
    cdp.send("ServiceWorker.enable")
    cdp.send("ServiceWorker.stopAllWorkers")
    page.wait_for_timeout(500)
    assert stopped.is_set(), "the Service Worker did not stop"
    cdp.detach()
