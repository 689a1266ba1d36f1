// The loading page's count of reloads in a tab (bootstrap.mjs, at most fallback.mjs `MAX_RELOADS`
// in a row), kept in `sessionStorage`, and its reset on every page the Service Worker answered
// (keepalive.mjs): that page is the handover, so a later fallback to the server (a worker that failed
// to start for a navigation under load) gets its own reloads, and a tab kept open for hours is not
// told the gallery could not start after its fourth such fallback. No imports: every page loads it.

/** The tab's `sessionStorage` key holding the count. */
export const RELOADS_KEY = "glasshouse-reloads";

/**
 * Forget the reloads counted in this tab (`scope.sessionStorage`). A frame denied storage (reading
 * `sessionStorage` throws there) has none to forget: nothing is thrown.
 */
export function forgetReloads(scope) {
  try {
    scope.sessionStorage.removeItem(RELOADS_KEY);
  } catch {
    // no storage in this frame: the bootstrap page could not count either
  }
}
