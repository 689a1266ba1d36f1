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
 * the navigation that last checked. Returns nothing; errors of the check are ignored (offline).
 */
export function watchForNewerVersion({ container, onNewer }) {
  const first = container.controller;
  if (!first) return;
  let told = false;
  container.addEventListener("controllerchange", () => {
    if (told || !container.controller || container.controller === first) return;
    told = true;
    onNewer();
  });
  Promise.resolve(container.getRegistration())
    .then((registration) => registration && registration.update())
    .catch(() => {});
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
