// The fallback policy: whether a gallery runs in Service Worker mode or falls back to worker mode,
// and why. bootstrap.mjs gathers the facts (the browser's APIs, the registration, the Service
// Worker's signs of life over time) and acts on each decision; sw-main.mjs lets a navigation that
// asks for worker mode through to the server. Pure (plain values in and out), so
// `node --test tests/runtime/` covers every case.
import { MODE_PARAM } from "./url-rewrite.mjs";

/** Milliseconds a Service Worker has to show a sign of life (progress, installed, control) before worker mode starts. */
export const SERVICE_WORKER_TIMEOUT_MS = 4000;
/** Reloads the bootstrap page makes in a row in one tab for a ready Service Worker to take the page over (reload-count.mjs). */
export const MAX_RELOADS = 3;

/** Why worker mode started, as the page says it: "Running without a Service Worker (<reason>)". */
export const WorkerModeReason = Object.freeze({
  ASKED: "asked for",
  NO_SERVICE_WORKER: "no Service Worker in this browser",
  REFUSED: "this browser refused it here",
  FAILED: "its Service Worker failed",
  SILENT: "its Service Worker did not start",
});

const SERVICE_WORKER = Object.freeze({ mode: "service-worker" });
const WAIT = Object.freeze({ mode: "wait" });
const worker = (reason) => ({ mode: "worker", reason });

/** Whether `url` (a URL or string) asks for worker mode: `?_glasshouse_mode=worker`. */
export function asksForWorkerMode(url) {
  return new URL(url).searchParams.get(MODE_PARAM) === "worker";
}

/**
 * Whether worker mode is forced on the page at `url`: the URL asks for it, or an earlier page of the
 * same tab did. `remembered`: the tab's sessionStorage value of "glasshouse-mode" (`null` when unset,
 * or where the frame is given no storage).
 */
export function workerModeForced(url, remembered) {
  return asksForWorkerMode(url) || remembered === "worker";
}

/**
 * Whether the Service Worker should leave a request to the server: a navigation (`requestMode`
 * "navigate") that asks for worker mode gets the server's bootstrap page, which then starts it.
 */
export function navigationAsksForWorkerMode(url, requestMode) {
  return requestMode === "navigate" && asksForWorkerMode(url);
}

/**
 * Which mode the bootstrap page should run in now: `{mode: "service-worker"}` (keep to the Service
 * Worker, however long it takes), `{mode: "worker", reason}` (switch to worker mode; `reason` one
 * of `WorkerModeReason`) or `{mode: "wait"}` (ask again shortly).
 * `state`: `{forced, hasServiceWorker, registerFailed, workerRedundant, controlled, progressSeen,
 * elapsedMs, timeoutMs}`: worker mode forced (`workerModeForced`); `navigator.serviceWorker`
 * exists; `register()` threw (refused here, e.g. storage denied to a third-party frame); the
 * registered worker became redundant (it failed to install) with none controlling the page; one
 * controls the page; it showed a sign of life (progress, installed, activating); milliseconds since
 * registration, and how many it may stay silent. A Service Worker that has shown a sign of life is
 * never abandoned for being slow.
 */
export function decideMode(state) {
  if (state.forced) return worker(WorkerModeReason.ASKED);
  if (!state.hasServiceWorker) return worker(WorkerModeReason.NO_SERVICE_WORKER);
  if (state.registerFailed) return worker(WorkerModeReason.REFUSED);
  if (state.controlled) return SERVICE_WORKER;
  if (state.workerRedundant) return worker(WorkerModeReason.FAILED);
  if (state.progressSeen) return SERVICE_WORKER;
  return state.elapsedMs >= state.timeoutMs ? worker(WorkerModeReason.SILENT) : WAIT;
}

/**
 * What the bootstrap page does when its Service Worker says it is ready, after `reloads` reloads in
 * this tab: "reload" (the Service Worker then answers the same URL), or "give-up" once `MAX_RELOADS`
 * reloads have not handed the page over (the page then says so and offers a new tab).
 */
export function readyAction(reloads) {
  return reloads >= MAX_RELOADS ? "give-up" : "reload";
}
