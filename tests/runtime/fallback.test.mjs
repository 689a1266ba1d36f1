// Unit tests of the fallback policy, Service Worker mode or worker mode (builder/runtime/reader/js/fallback.mjs):
// one test per case the bootstrap page meets. Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_RELOADS, SERVICE_WORKER_TIMEOUT_MS, decideMode, navigationAsksForWorkerMode, readyAction,
  workerModeForced,
} from "../../builder/runtime/reader/js/fallback.mjs";

const ORIGIN = "http://g1.localhost:8000";
/** A browser with Service Workers, just after registering one that has not been heard from yet. */
const REGISTERED = Object.freeze({
  forced: false, hasServiceWorker: true, registerFailed: false, workerRedundant: false, controlled: false,
  progressSeen: false, elapsedMs: 0, timeoutMs: SERVICE_WORKER_TIMEOUT_MS,
});
// The reasons as the page shows them: "Running without a Service Worker (<reason>)".
const worker = (reason) => ({ mode: "worker", reason });

test("a Service Worker just registered is waited for", () => {
  assert.deepEqual(decideMode(REGISTERED), { mode: "wait" });
  assert.deepEqual(decideMode({ ...REGISTERED, elapsedMs: SERVICE_WORKER_TIMEOUT_MS - 1 }), { mode: "wait" });
});

test("a browser without navigator.serviceWorker runs in worker mode at once", () => {
  assert.deepEqual(decideMode({ ...REGISTERED, hasServiceWorker: false }), worker("no Service Worker in this browser"));
});

test("?_glasshouse_mode=worker forces worker mode, and the tab's later pages remember it", () => {
  assert.equal(workerModeForced(`${ORIGIN}/chinook?_glasshouse_mode=worker`, null), true);
  assert.equal(workerModeForced(`${ORIGIN}/chinook/Album`, "worker"), true, "remembered in sessionStorage");
  assert.equal(workerModeForced(`${ORIGIN}/chinook`, null), false);
  assert.equal(workerModeForced(`${ORIGIN}/chinook?_glasshouse_mode=service-worker`, null), false);
  // Forced wins over a browser that has Service Workers, even one already controlling the page.
  assert.deepEqual(decideMode({ ...REGISTERED, forced: true, controlled: true }), worker("asked for"));
  assert.deepEqual(decideMode({ ...REGISTERED, forced: true, hasServiceWorker: false }), worker("asked for"));
});

test("a registration the browser refuses switches to worker mode", () => {
  assert.deepEqual(decideMode({ ...REGISTERED, registerFailed: true }), worker("this browser refused it here"));
});

test("a third-party frame denied storage (no session memory, registration refused) runs in worker mode", () => {
  // sessionStorage throws there, so nothing is remembered; register() rejects with a SecurityError.
  const forced = workerModeForced(`${ORIGIN}/-/embed/chinook/Album`, null);
  assert.deepEqual(decideMode({ ...REGISTERED, forced, registerFailed: true }), worker("this browser refused it here"));
});

test("a Service Worker that fails to install switches to worker mode at once, not after the timeout", () => {
  assert.deepEqual(decideMode({ ...REGISTERED, workerRedundant: true }), worker("its Service Worker failed"));
});

test("a Service Worker that shows no sign of life within the timeout is given up", () => {
  assert.deepEqual(decideMode({ ...REGISTERED, elapsedMs: SERVICE_WORKER_TIMEOUT_MS }), worker("its Service Worker did not start"));
  assert.equal(SERVICE_WORKER_TIMEOUT_MS, 4000);
});

test("a slow Service Worker that reports progress is never abandoned", () => {
  assert.deepEqual(decideMode({ ...REGISTERED, progressSeen: true, elapsedMs: 600_000 }), { mode: "service-worker" });
});

test("a Service Worker controlling the page keeps it, even when a newer registration turns redundant", () => {
  assert.deepEqual(decideMode({ ...REGISTERED, controlled: true, elapsedMs: 600_000 }), { mode: "service-worker" });
  assert.deepEqual(decideMode({ ...REGISTERED, controlled: true, workerRedundant: true }), { mode: "service-worker" });
});

test("a ready Service Worker gets the page by a reload, at most three times per tab", () => {
  assert.equal(MAX_RELOADS, 3);
  assert.deepEqual([0, 1, 2, 3, 4].map(readyAction), ["reload", "reload", "reload", "give-up", "give-up"]);
});

test("the Service Worker leaves a navigation that asks for worker mode to the server", () => {
  const asking = new URL(`${ORIGIN}/chinook?_glasshouse_mode=worker`);
  assert.equal(navigationAsksForWorkerMode(asking, "navigate"), true);
  assert.equal(navigationAsksForWorkerMode(asking, "cors"), false, "a page's fetch is answered as usual");
  assert.equal(navigationAsksForWorkerMode(new URL(`${ORIGIN}/chinook`), "navigate"), false);
});
