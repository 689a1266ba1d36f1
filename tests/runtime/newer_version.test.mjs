// Unit tests of the "newer version available" watcher (builder/runtime/reader/js/newer-version.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { reloadOnceGone, watchForNewerVersion } from "../../builder/runtime/reader/js/newer-version.mjs";

function standIn(controller, registered = true) {
  const listeners = [];
  const container = {
    controller,
    updates: 0,
    addEventListener: (type, listener) => type === "controllerchange" && listeners.push(listener),
    getRegistration: async () => (registered ? { update: async () => { container.updates += 1; } } : undefined),
    takeOver(next) {
      container.controller = next;
      for (const listener of listeners) listener();
    },
  };
  return container;
}

test("a page whose worker is replaced by another hears of the newer version once, and asks for an update check", async () => {
  const container = standIn({ id: "old" });
  let told = 0;
  watchForNewerVersion({ container, onNewer: () => told++ });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(container.updates, 1);
  container.takeOver({ id: "new" });
  container.takeOver({ id: "newer" });
  assert.equal(told, 1);
});

test("the loading page, which no worker controlled, is not told when the first worker takes it over", async () => {
  const container = standIn(null);
  let told = 0;
  watchForNewerVersion({ container, onNewer: () => told++ });
  container.takeOver({ id: "first" });
  assert.equal(told, 0);
  assert.equal(container.updates, 0);
});

test("a controllerchange that leaves no controller (the kill switch unregistering) is no new version: the worker is gone", () => {
  const container = standIn({ id: "old" });
  let told = 0;
  let gone = 0;
  watchForNewerVersion({ container, onNewer: () => told++, onGone: () => gone++ });
  container.takeOver(null);
  container.takeOver(null);
  assert.equal(told, 0);
  assert.equal(gone, 1);
});

test("a page the old worker answered after the kill switch unregistered it finds no registration: the worker is gone", async () => {
  // The kill switch reloads the pages it finds; a page whose document did not exist yet is not one of them.
  const container = standIn({ id: "old" }, false);
  let gone = 0;
  watchForNewerVersion({ container, onNewer: () => assert.fail("no new version"), onGone: () => gone++ });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(gone, 1);
  assert.equal(container.updates, 0);
});

test("a registered worker is not gone, and the loading page is never told it is", async () => {
  for (const [controller, registered] of [[{ id: "old" }, true], [null, false]]) {
    const container = standIn(controller, registered);
    let gone = 0;
    watchForNewerVersion({ container, onNewer: () => {}, onGone: () => gone++ });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(gone, 0);
  }
});

function tab(storage = new Map()) {
  return {
    reloads: 0,
    location: { reload() { this.owner.reloads += 1; } },
    sessionStorage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) },
    init() { this.location.owner = this; return this; },
  }.init();
}

test("a page whose worker is gone reloads, at most once in the interval per tab", () => {
  const win = tab();
  assert.equal(reloadOnceGone(win, 30_000, 1_000_000), true);
  assert.equal(reloadOnceGone(win, 30_000, 1_010_000), false, "10 s later: no second reload");
  assert.equal(reloadOnceGone(win, 30_000, 1_040_000), true, "40 s later: the server's answer lost its worker again");
  assert.equal(win.reloads, 2);
});

test("without session storage the page still reloads", () => {
  const win = tab();
  win.sessionStorage = { getItem() { throw new Error("SecurityError"); } };
  assert.equal(reloadOnceGone(win), true);
  assert.equal(win.reloads, 1);
});
