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


#: What the page shows once a takedown reached it (``gallery.content.resolve``'s notice).
TAKEN_DOWN_TEXT = "This gallery was taken down."

#: A JavaScript async function that returns what a tab holds, for a failure's message: ``{url,
#: registrations (its origin's Service Worker registrations, counted), controlled, guard (the kill
#: switch's reload guard, newer-version.mjs), text (the start of the page's text)}``. Playwright
#: evaluates it; WebDriver runs ``return (TAB_STATE)()``.
TAB_STATE = """async () => {
    const sw = navigator.serviceWorker;
    const registrations = sw ? await sw.getRegistrations() : [];
    let guard = null;
    try { guard = sessionStorage.getItem('glasshouse-gone-reload'); } catch {}
    return {url: location.href, registrations: registrations.length, controlled: Boolean(sw && sw.controller),
            guard, text: document.body ? document.body.innerText.slice(0, 400) : ''};
}"""


def wait_until_taken_down(page: Any, timeout_ms: int) -> None:
    """Wait until ``page`` shows the takedown notice (``TAKEN_DOWN_TEXT``), at most ``timeout_ms``.

    Fails (``AssertionError``) with what the tab held then (``TAB_STATE``).
    """
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.wait_for_function(f"() => document.body && document.body.innerText.includes({TAKEN_DOWN_TEXT!r})", timeout=timeout_ms)
    except PlaywrightError as exc:
        try:
            state = page.evaluate(TAB_STATE)
        except PlaywrightError as unreadable:
            state = f"(unreadable: {str(unreadable).splitlines()[0]})"
        raise AssertionError(f"no takedown notice within {timeout_ms} ms ({str(exc).splitlines()[0]}); the tab: {state}") from exc
