"""Each gallery is its own origin: a script on gallery A cannot touch gallery B's storage (Chromium).

On B, then on A, a script writes markers into all four stores a Service Worker gallery uses:
Cache Storage, IndexedDB, localStorage and a Service Worker registration (the gallery's own).
On A it then does all a hostile gallery could: deletes B's cache and database by name,
empties every store it can see, unregisters every registration it can see, and tries to
register a worker for B's origin. Back on B, B's markers and worker are intact and nothing of A's
is there.

``test_the_probe_sees_a_shared_origin`` runs the same steps with "B" on A's own origin (two
paths of one origin, as galleries served under paths would be) and shows the probe then finds
A's markers and B's gone: the isolation test can fail, and does when galleries share an origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKER_MS = 120_000

WRITE_MARKERS = """async (tag) => {
  localStorage.setItem("owner", tag);
  localStorage.setItem("marker-" + tag, tag);
  const cache = await caches.open("marker-" + tag);
  await cache.put("/__marker", new Response(tag));
  await new Promise((resolve, reject) => {
    const open = indexedDB.open("marker-" + tag, 1);
    open.onupgradeneeded = () => open.result.createObjectStore("markers");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction("markers", "readwrite");
      tx.objectStore("markers").put(tag, "owner");
      tx.oncomplete = () => { open.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
  });
}"""

#: What a script on this origin sees: its origin, localStorage, Cache Storage (marker contents),
#: IndexedDB databases (marker contents) and Service Worker registration scopes.
SNAPSHOT = """async () => {
  const markerCaches = {};
  const cacheNames = (await caches.keys()).sort();
  for (const name of cacheNames.filter((n) => n.startsWith("marker-"))) {
    const hit = await (await caches.open(name)).match("/__marker");
    markerCaches[name] = hit ? await hit.text() : null;
  }
  const databases = (await indexedDB.databases()).map((d) => d.name).sort();
  const markerDatabases = {};
  for (const name of databases.filter((n) => n.startsWith("marker-"))) {
    markerDatabases[name] = await new Promise((resolve) => {
      const open = indexedDB.open(name);
      open.onerror = () => resolve(null);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains("markers")) { db.close(); resolve(null); return; }
        const get = db.transaction("markers").objectStore("markers").get("owner");
        get.onsuccess = () => { db.close(); resolve(get.result ?? null); };
        get.onerror = () => { db.close(); resolve(null); };
      };
    });
  }
  return {
    origin: location.origin,
    localStorage: Object.fromEntries(Object.entries(localStorage)),
    caches: cacheNames,
    markerCaches,
    markerDatabases,
    registrations: (await navigator.serviceWorker.getRegistrations()).map((r) => r.scope).sort(),
  };
}"""

#: Everything a hostile script on this origin tries against ``other`` (B's tag and URL).
ATTACK = """async ([otherTag, otherURL]) => {
  const deleteDatabase = (name) => new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onerror = request.onblocked = () => resolve();
  });
  const result = {};
  result.deletedOthersCache = await caches.delete("marker-" + otherTag);
  await deleteDatabase("marker-" + otherTag);
  for (const name of await caches.keys()) await caches.delete(name);
  for (const db of await indexedDB.databases()) await deleteDatabase(db.name);
  localStorage.clear();
  for (const registration of await navigator.serviceWorker.getRegistrations()) await registration.unregister();
  try {
    await navigator.serviceWorker.register(new URL("sw.js", otherURL).href, { scope: otherURL, type: "module" });
    result.registeredForOther = "registered";
  } catch (error) {
    result.registeredForOther = error.name;
  }
  return result;
}"""


def open_with_worker(page: Any, url: str) -> None:
    """Open a gallery page and wait until its Service Worker answers it.

    The bootstrap page reloads itself once its worker is ready; waiting for Datasette's footer
    waits for that reload, which would otherwise abort the probe's next navigation.
    """
    page.goto(url)
    page.wait_for_selector("footer")
    assert page.evaluate("Boolean(navigator.serviceWorker.controller)"), "answered by the Service Worker"


def probe(page: Any, a_url: str, b_url: str, b_page: str) -> dict[str, Any]:
    """Run the steps of the module docstring; return what B saw before and after, and what A saw and did.

    ``b_page`` is a URL on B's origin that the Service Worker passes to the server
    (``robots.txt``), to come back to B without booting Datasette again.
    """
    page.set_default_timeout(WORKER_MS)
    open_with_worker(page, b_url)
    page.evaluate(WRITE_MARKERS, "B")
    b_before = page.evaluate(SNAPSHOT)

    open_with_worker(page, a_url)
    page.evaluate(WRITE_MARKERS, "A")
    a_sees = page.evaluate(SNAPSHOT)
    attack = page.evaluate(ATTACK, ["B", b_url])
    a_after = page.evaluate(SNAPSHOT)

    page.goto(b_page)
    b_after = page.evaluate(SNAPSHOT)
    return {"b_before": b_before, "a_sees": a_sees, "attack": attack, "a_after": a_after, "b_after": b_after}


def test_a_script_on_one_gallery_cannot_read_write_or_unregister_anothers_storage(
    browser: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    a = published_gallery(shared_data / "chinook.sqlite", title="Gallery A")
    b = published_gallery(shared_data / "datasette-fixtures.db", title="Gallery B")
    context = browser.new_context()
    try:
        seen = probe(context.new_page(), a.url, b.url, b.url + "robots.txt")
    finally:
        context.close()
    b_origin, a_origin = b.url.rstrip("/"), a.url.rstrip("/")

    before = seen["b_before"]
    assert before["origin"] == b_origin
    assert before["markerCaches"] == {"marker-B": "B"} and before["markerDatabases"] == {"marker-B": "B"}
    assert before["registrations"] == [b.url]
    assert len(before["caches"]) > 1, "B's own runtime caches, next to the marker"

    # On A: none of B's markers are visible.
    a_sees = seen["a_sees"]
    assert a_sees["origin"] == a_origin
    assert a_sees["localStorage"] == {"owner": "A", "marker-A": "A"}
    assert a_sees["markerCaches"] == {"marker-A": "A"}
    assert a_sees["markerDatabases"] == {"marker-A": "A"}
    assert a_sees["registrations"] == [a.url]

    # A's attack reached only A's own stores; B's origin refused it a worker.
    assert seen["attack"] == {"deletedOthersCache": False, "registeredForOther": "SecurityError"}
    after_attack = seen["a_after"]
    assert after_attack["localStorage"] == {} and after_attack["markerCaches"] == {}
    assert after_attack["markerDatabases"] == {} and after_attack["registrations"] == []

    # Back on B: all of B's is there, none of A's.
    after = seen["b_after"]
    assert after["origin"] == b_origin
    assert after["localStorage"] == before["localStorage"] == {"owner": "B", "marker-B": "B"}
    assert after["caches"] == before["caches"]
    assert after["markerCaches"] == {"marker-B": "B"}
    assert after["markerDatabases"] == {"marker-B": "B"}
    assert after["registrations"] == [b.url]


def test_the_probe_sees_a_shared_origin(
    browser: Any, published_gallery: Any, live_gallery_server: Any, shared_data: Path
) -> None:
    a = published_gallery(shared_data / "chinook.sqlite", title="Gallery A")
    context = browser.new_context()
    try:
        # "B" is a second path of A's origin: Datasette's database page instead of the index.
        seen = probe(context.new_page(), a.url, a.url + "chinook", a.url + "robots.txt")
    finally:
        context.close()
    assert seen["a_sees"]["markerCaches"] == {"marker-A": "A", "marker-B": "B"}  # A reads B's
    assert seen["a_sees"]["localStorage"]["marker-B"] == "B"
    assert seen["attack"] == {"deletedOthersCache": True, "registeredForOther": "registered"}
    after = seen["b_after"]
    assert after["localStorage"] == {} and after["markerCaches"] == {} and after["markerDatabases"] == {}
    assert a.url not in after["registrations"]  # B's worker (scope "/") was unregistered by A
