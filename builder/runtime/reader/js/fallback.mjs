// The fallback policy: whether the bootstrap page keeps to Service Worker mode or switches to worker
// mode (bootstrap.mjs gathers the facts and acts on the decision). Pure, so `node --test
// tests/runtime/` covers it.

/**
 * Which mode the bootstrap page should run in now: "service-worker" (keep waiting on it),
 * "worker" (switch to worker mode) or "wait". `state`: `{forced, hasServiceWorker, registerFailed,
 * workerRedundant, controlled, progressSeen, elapsedMs, timeoutMs}`. A Service Worker that has
 * reported progress is never abandoned for being slow.
 */
export function decideMode(state) {
  if (state.forced || !state.hasServiceWorker || state.registerFailed) return "worker";
  if (state.controlled) return "service-worker";
  if (state.workerRedundant) return "worker";
  if (state.progressSeen) return "service-worker";
  return state.elapsedMs >= state.timeoutMs ? "worker" : "wait";
}
