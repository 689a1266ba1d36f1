// The kill switch (builder/runtime/reader/killswitch.js), run with a stand-in Service Worker global:
// it empties the caches, unregisters, and reloads every controlled page once, a page that becomes a
// client only after activation began (its navigation was still loading) included.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const SOURCE = readFileSync(new URL("../../builder/runtime/reader/killswitch.js", import.meta.url), "utf8");

function serviceWorkerGlobal(clientsOverTime) {
  const listeners = {};
  const events = [];
  let sweep = 0;
  const scope = {
    addEventListener: (type, listener) => (listeners[type] = listener),
    skipWaiting: () => events.push("skipWaiting"),
    registration: { unregister: async () => events.push("unregistered") },
    clients: {
      matchAll: async () => clientsOverTime(sweep++).map((id) => ({ id, url: `http://g.localhost/${id}`, navigate: async (url) => events.push(`navigate ${url}`) })),
    },
  };
  const caches = { keys: async () => ["glasshouse-a", "glasshouse-b"], delete: async (key) => events.push(`deleted ${key}`) };
  new Function("self", "caches", "setTimeout", SOURCE)(scope, caches, (resolve) => resolve());
  return { listeners, events };
}

test("a taken-down gallery's worker empties the caches, unregisters, and reloads each page once, late ones too", async () => {
  // Page "a" is a client at once; page "b" only from the third look (its navigation was loading).
  const { listeners, events } = serviceWorkerGlobal((sweep) => (sweep < 2 ? ["a"] : ["a", "b"]));
  listeners.install();
  let done;
  listeners.activate({ waitUntil: (promise) => (done = promise) });
  await done;
  assert.deepEqual(events, [
    "skipWaiting", "deleted glasshouse-a", "deleted glasshouse-b", "unregistered",
    "navigate http://g.localhost/a", "navigate http://g.localhost/b",
  ]);
});
