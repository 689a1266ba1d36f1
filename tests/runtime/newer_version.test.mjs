// Unit tests of the "newer version available" watcher (builder/runtime/reader/js/newer-version.mjs). Run: node --test tests/runtime/
import assert from "node:assert/strict";
import { test } from "node:test";

import { watchForNewerVersion } from "../../builder/runtime/reader/js/newer-version.mjs";

function standIn(controller) {
  const listeners = [];
  const container = {
    controller,
    updates: 0,
    addEventListener: (type, listener) => type === "controllerchange" && listeners.push(listener),
    getRegistration: async () => ({ update: async () => { container.updates += 1; } }),
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

test("a controllerchange that leaves no controller (the kill switch unregistering) is no new version", () => {
  const container = standIn({ id: "old" });
  let told = 0;
  watchForNewerVersion({ container, onNewer: () => told++ });
  container.takeOver(null);
  assert.equal(told, 0);
});
