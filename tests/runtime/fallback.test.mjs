// Unit tests of the fallback policy, Service Worker mode or worker mode (builder/runtime/reader/js/fallback.mjs).
// Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { decideMode } from "../../builder/runtime/reader/js/fallback.mjs";

test("worker mode starts when no Service Worker can run, but never abandons one that is working", () => {
  const base = {
    forced: false, hasServiceWorker: true, registerFailed: false, workerRedundant: false, controlled: false,
    progressSeen: false, elapsedMs: 0, timeoutMs: 4000,
  };
  assert.equal(decideMode(base), "wait");
  assert.equal(decideMode({ ...base, forced: true }), "worker");
  assert.equal(decideMode({ ...base, hasServiceWorker: false }), "worker");
  assert.equal(decideMode({ ...base, registerFailed: true }), "worker");
  assert.equal(decideMode({ ...base, workerRedundant: true }), "worker");
  assert.equal(decideMode({ ...base, elapsedMs: 4000 }), "worker");
  assert.equal(decideMode({ ...base, elapsedMs: 60000, progressSeen: true }), "service-worker");
  assert.equal(decideMode({ ...base, elapsedMs: 60000, controlled: true }), "service-worker");
});
