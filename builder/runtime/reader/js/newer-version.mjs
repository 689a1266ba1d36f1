// "A newer version of this gallery is available": every page the Service Worker answers runs this
// (through keepalive.mjs). When a newer build's Service Worker takes over this page (it installed,
// downloaded the new bundle and claimed its clients: sw-main.mjs), the page's own answers came from
// the old build, so it says so and offers a reload, which the new build answers.

/** The notice's text and the id of its element. */
export const NEWER_VERSION_TEXT = "A newer version of this gallery is available.";
export const NEWER_VERSION_ID = "glasshouse-newer-version";

/**
 * Call `onNewer()` once when another Service Worker takes control of this page, which was
 * controlled when it loaded (a page that was not controlled is the loading page, whose first
 * worker taking over is no new version). `container` is `navigator.serviceWorker` (or a
 * stand-in with `controller`, `addEventListener` and `getRegistration`). Also asks the browser
 * to check for a newer worker now (`registration.update()`), as a page may stay open long after
 * the navigation that last checked.
 *
 * Calls `onGone()` once when the page's worker was unregistered: the registration is gone when
 * the page asks for it, or no worker controls the page after a controllerchange. That is the kill
 * switch of a gallery taken down (killswitch.js), which reloads the pages it finds
 * (`clients.matchAll`); a page the old worker answered while the kill switch ran may not be among
 * them yet (a window client exists only once its document does). Not reproduced: WebKit once kept
 * a taken-down gallery's page past the 30 s a test allowed, and Chromium, tried three times with
 * a navigation in flight, reloaded it without this. Returns nothing; errors of the check are
 * ignored (offline).
 */
export function watchForNewerVersion({ container, onNewer, onGone = () => {} }) {
  const first = container.controller;
  if (!first) return;
  let told = false;
  let gone = false;
  const goneOnce = () => {
    if (gone) return;
    gone = true;
    onGone();
  };
  container.addEventListener("controllerchange", () => {
    if (!container.controller) return goneOnce();
    if (told || container.controller === first) return;
    told = true;
    onNewer();
  });
  Promise.resolve(container.getRegistration())
    .then((registration) => (registration ? registration.update() : goneOnce()))
    .catch(() => {});
}

/**
 * Reload `win`'s page once its worker is gone (`watchForNewerVersion`'s `onGone`): the server then
 * answers, with its notice if the gallery was taken down. At most once in `intervalMs` per tab
 * (`win.sessionStorage`, where it may be used), so a browser that lost the registration some other
 * way cannot make the page reload without end. Returns whether it reloaded.
 */
export function reloadOnceGone(win, intervalMs = 30_000, now = Date.now()) {
  const key = "glasshouse-gone-reload";
  try {
    const last = Number(win.sessionStorage.getItem(key) || 0);
    if (now - last < intervalMs) return false;
    win.sessionStorage.setItem(key, String(now));
  } catch {
    // No session storage: reload anyway; the server's answer then has no worker to lose.
  }
  win.location.reload();
  return true;
}

/** Show the notice at the top of `doc` (once), with a link that reloads the page. */
export function showNewerVersionNotice(doc) {
  if (doc.getElementById(NEWER_VERSION_ID)) return;
  const bar = doc.createElement("div");
  bar.id = NEWER_VERSION_ID;
  bar.setAttribute("role", "status");
  // CSSOM, not a style attribute: the gallery's policy may refuse inline style attributes.
  Object.assign(bar.style, {
    position: "sticky", top: "0", zIndex: "2147483647", padding: "0.6em 1em", background: "#fff3c4",
    color: "#222", borderBottom: "1px solid #d8b500", font: "15px/1.4 system-ui, sans-serif",
  });
  const reload = doc.createElement("a");
  reload.href = doc.location.href;
  reload.textContent = "Reload to see it";
  reload.addEventListener("click", (event) => {
    event.preventDefault();
    doc.location.reload();
  });
  bar.append(`${NEWER_VERSION_TEXT} `, reload);
  doc.body.prepend(bar);
}
