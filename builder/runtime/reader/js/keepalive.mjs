// Keep-alive for Service Worker mode: every page the Service Worker answers loads this module
// (sw-main.mjs adds the script tag), which pings the Service Worker every 20 s while the page is
// open, as JupyterLite does. Browsers stop a Service Worker after about 30 s without events, and a
// stopped one must restore Python before it answers again; each ping is an event that restarts
// that clock. The answer carries the runtime's status (core.mjs `status()`), shown on the page as
// `<html data-glasshouse-boot="snapshot|fresh" data-glasshouse-snapshot="none|due|saved|off"
// data-glasshouse-database="lazy|whole">`.
// It also says when a newer build's worker has taken over the page, reloads the page when its
// worker was unregistered (a takedown's kill switch; newer-version.mjs), and clears the bootstrap
// page's count of reloads (reload-count.mjs): this page is the handover.
import { insertAfterTag } from "./embed.mjs";
import { reloadOnceGone, showNewerVersionNotice, watchForNewerVersion } from "./newer-version.mjs";
import { forgetReloads } from "./reload-count.mjs";

/** Milliseconds between pings: under the ~30 s after which Chromium and Firefox stop an idle Service Worker. */
export const KEEPALIVE_MS = 20_000;
export const KEEPALIVE_MESSAGE = "glasshouse:keepalive";

/** `html` with this module's `<script type="module" src="{src}">` added at the start of `<head>` (or prepended). */
export function withKeepAlive(html, src) {
  const tag = `<script type="module" src="${src.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}"></script>`;
  return insertAfterTag(html, "head", tag) ?? tag + html;
}

/**
 * Ping the controlling Service Worker now and every `intervalMs`; `onStatus(status)` receives each
 * answer. `container` is `navigator.serviceWorker` (or a stand-in with `controller` and
 * `addEventListener`). Returns a function that stops the pings.
 */
export function startKeepAlive({ container, onStatus = () => {}, intervalMs = KEEPALIVE_MS, timers = globalThis }) {
  const ping = () => container.controller && container.controller.postMessage({ type: KEEPALIVE_MESSAGE });
  container.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === KEEPALIVE_MESSAGE) onStatus(data);
  });
  ping();
  const timer = timers.setInterval(ping, intervalMs);
  return () => timers.clearInterval(timer);
}

if (typeof document !== "undefined" && typeof navigator !== "undefined" && navigator.serviceWorker) {
  forgetReloads(globalThis);
  startKeepAlive({
    container: navigator.serviceWorker,
    onStatus: ({ boot, snapshot, database }) => {
      if (boot) document.documentElement.dataset.glasshouseBoot = boot;
      if (snapshot) document.documentElement.dataset.glasshouseSnapshot = snapshot;
      if (database) document.documentElement.dataset.glasshouseDatabase = database;
    },
  });
  watchForNewerVersion({
    container: navigator.serviceWorker,
    onNewer: () => showNewerVersionNotice(document),
    onGone: () => reloadOnceGone(globalThis),
  });
}
